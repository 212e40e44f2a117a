"""Prefix coding rules: which enterprise prefixes a node may allocate under its own prefix.

An industrial-internet prefix is dotted: national code, sector/region code, enterprise code,
e.g. ``88.123.4567``. A secondary node homing ``88.123`` allocates ``88.123.<enterprise>``;
the rule for the enterprise segment is configurable in ``registry.toml`` beside
``idnode.toml``::

    [coding]
    enterprise_code = "^[0-9]{4,8}$"   # regular expression for the new segment
    max_depth = 1                      # segments a node may add under its own prefix
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from idnode.model import handle_key
from idnode.registry.errors import RegistryError

SETTINGS_NAME = "registry.toml"


@dataclass(frozen=True)
class CodingRules:
    node_prefixes: tuple[str, ...]
    enterprise_code: str = r"^[0-9]{4,8}$"
    max_depth: int = 1

    def check(self, prefix: str, field: str = "prefix") -> str:
        """``prefix`` when it lies in this node's space and follows the rule; else an error."""
        if not isinstance(prefix, str) or not prefix or "/" in prefix or prefix != prefix.strip():
            raise RegistryError("must be a dotted prefix such as 88.123.4567", field=field)
        key = handle_key(prefix)
        for own in self.node_prefixes:
            own_key = handle_key(own)
            if key.startswith(own_key + "."):
                segments = prefix[len(own) + 1 :].split(".")
                if len(segments) > self.max_depth:
                    raise RegistryError(
                        f"at most {self.max_depth} segment(s) may be added under {own}",
                        field=field,
                    )
                for seg in segments:
                    if not re.fullmatch(self.enterprise_code, seg):
                        raise RegistryError(
                            f"segment {seg!r} breaks the coding rule {self.enterprise_code}",
                            field=field,
                        )
                return prefix
        owned = ", ".join(self.node_prefixes) or "none"
        raise RegistryError(f"{prefix} is outside this node's prefix space ({owned})", field=field)


def load_rules(directory: Path, node_prefixes: list[str]) -> CodingRules:
    path = Path(directory) / SETTINGS_NAME
    section: dict = {}
    if path.exists():
        section = tomllib.loads(path.read_text("utf-8")).get("coding", {})
    return CodingRules(
        tuple(node_prefixes),
        section.get("enterprise_code", CodingRules.enterprise_code),
        int(section.get("max_depth", CodingRules.max_depth)),
    )
