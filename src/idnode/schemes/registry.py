"""The enabled schemes of a node and the one function that maps a name: ``SchemeRegistry``.

Built from ``[schemes]`` (docs/operations.md): which schemes are on, the Handle prefix each
maps under (``prefix`` for all, ``prefixes = ["gs1=20.500.77.1"]`` per scheme; default the
node's first prefix), and extra plugins an operator adds without changing idnode
(``plugins = ["name=package.module:Class"]``, a class built with ``prefix=`` that has the
``Scheme`` methods). A name in no scheme's form is a Handle name and passes unchanged.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from idnode.config import ConfigError, SchemesSection
from idnode.schemes.base import Scheme
from idnode.schemes.ecode import EcodeScheme
from idnode.schemes.gs1 import GS1Scheme
from idnode.schemes.oid import OidScheme

BUILTIN: dict[str, Callable[..., Scheme]] = {
    "gs1": GS1Scheme,
    "ecode": EcodeScheme,
    "oid": OidScheme,
}


@dataclass(frozen=True)
class SchemeRegistry:
    """The node's schemes, asked in order; the first that recognises a name maps it."""

    schemes: tuple[Scheme, ...] = ()
    # every built-in form has a colon (``urn:oid:``, ``ecode:``, ``gs1:``, ``https://``):
    # with only those, a name without one is a Handle name, known without asking each
    colon_forms_only: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        builtin = tuple(BUILTIN.values())
        only_builtin = all(type(s) in builtin for s in self.schemes)
        object.__setattr__(self, "colon_forms_only", only_builtin)  # (frozen)

    def get(self, name: str) -> Scheme | None:
        return next((s for s in self.schemes if s.name == name), None)

    def to_handle(self, name: str) -> str:
        """The Handle name ``name`` stands for: a scheme's mapping, or ``name`` itself."""
        if self.colon_forms_only and ":" not in name:
            return name
        for scheme in self.schemes:
            if scheme.recognises(name):
                return scheme.to_handle(name)
        return name

    def forms_of(self, handle: str) -> dict[str, str]:
        """Each scheme's form of a Handle name (scheme name -> form), for the ones that map it."""
        out = {}
        for scheme in self.schemes:
            form = scheme.from_handle(handle)
            if form is not None:
                out[scheme.name] = form
        return out

    @classmethod
    def from_settings(cls, section: SchemesSection, node_prefixes: Sequence[str]) -> SchemeRegistry:
        """The registry ``[schemes]`` describes; ``ConfigError`` for a setting that is wrong."""
        factories = dict(BUILTIN)
        for entry in section.plugins:
            name, _, target = entry.partition("=")
            factories[name.strip()] = _load(entry, target.strip())
        per_scheme = {}
        for entry in section.prefixes:
            name, eq, prefix = entry.partition("=")
            if not eq or not prefix.strip():
                raise ConfigError(f"[schemes] prefixes: {entry!r} is not name=prefix")
            per_scheme[name.strip()] = prefix.strip()
        default = section.prefix or (node_prefixes[0] if node_prefixes else "")
        schemes = []
        for name in section.enabled:
            if name not in factories:
                known = ", ".join(sorted(factories))
                raise ConfigError(f"[schemes] enabled: unknown scheme {name!r} (known: {known})")
            prefix = per_scheme.get(name, default)
            if prefix:  # a node with no prefix has nowhere to map names to
                schemes.append(factories[name](prefix=prefix))
        return cls(tuple(schemes))


def _load(entry: str, target: str) -> Callable[..., Scheme]:
    module_name, colon, attr = target.partition(":")
    if not colon or not module_name or not attr:
        raise ConfigError(f"[schemes] plugins: {entry!r} is not name=package.module:Class")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"[schemes] plugins: cannot load {target!r}: {exc}") from None
