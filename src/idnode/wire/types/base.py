"""What one typed-value module declares, and the REST ``data`` forms every type shares.

A module under ``idnode.wire.types`` describes one handle value type with a ``ValueType``:
how its bytes parse and encode, which rule a write must pass, how the Handle.Net REST API
shows it (``{"format": "admin", "value": {...}}``) and what the hierarchy does with it
(``Role``). The registry (``idnode.wire.types``) maps type names to these descriptions; no
other module keeps a table of types.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from idnode.errors import IdnodeError, InvalidValue

T = TypeVar("T")

# control characters but tab, LF and CR, and DEL: one C-level scan instead of a Python loop
# per character (bulk import renders millions of values, docs/performance.md)
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Role(Enum):
    """What resolution makes of a value of the type (HSJ ``Common.*_TYPES``)."""

    DATA = "data"  # nothing: the value is the handle's own data
    SITE = "site"  # an HS_SITE record serving the handle (HSJ SITE_INFO_TYPES)
    PREFIX_SITE = "prefix-site"  # an HS_SITE record serving derived prefixes
    SERVICE_HANDLE = "service-handle"  # names a handle whose values hold the sites


@dataclass(frozen=True, slots=True)
class ValueType(Generic[T]):
    """One handle value type.

    ``parse`` turns data into the typed object (``MalformedMessage`` for bytes that do not
    decode, ``InvalidValue`` for well-formed data the node will not use); ``encode`` is its
    inverse. ``check`` is the rule a write must pass when it is not simply "the data parses"
    (10320/LOC is stored leniently, HS_SECKEY not checked at all). ``json_format`` names the
    REST form the type is shown in, with ``render``/``read`` converting its ``value``; types
    without one are shown as ``string`` or ``base64`` like any other data.
    """

    name: str
    parse: Callable[[bytes], T]
    encode: Callable[[T], bytes]
    check: Callable[[bytes], object] | None = None
    json_format: str | None = None
    render: Callable[[T], Any] | None = None
    read: Callable[[Any, str], T] | None = None
    role: Role = Role.DATA

    def validate(self, data: bytes) -> None:
        """Raise ``InvalidValue`` whose message names the broken rule (never the data)."""
        try:
            (self.check or self.parse)(data)
        except InvalidValue:
            raise
        except IdnodeError as exc:  # MalformedMessage: "field: what was wrong"
            raise InvalidValue(exc.message) from None

    def to_json(self, data: bytes) -> dict[str, Any] | None:
        """The typed REST ``data`` object, or None when the type has no JSON form or the
        data does not decode (HSJ shows such data raw, and so do we)."""
        if self.json_format is None or self.render is None:
            return None
        try:
            return {"format": self.json_format, "value": self.render(self.parse(data))}
        except IdnodeError:
            return None

    def from_json_value(self, value: Any, field: str) -> bytes:
        """Data from the ``value`` of a ``{"format": json_format}`` object."""
        if self.read is None:
            raise InvalidValue(f"{field}: {self.name} has no JSON form")
        return self.encode(self.read(value, field))


def looks_like_text(data: bytes) -> bool:
    """Valid UTF-8 with no control characters but tab, CR and LF."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _NOT_TEXT.search(text) is None


def plain_json(data: bytes) -> dict[str, Any]:
    """``{"format": "string"}`` for text, ``{"format": "base64"}`` for anything else (HSJ
    ``GsonUtility.serializeData``'s fallback for untyped or undecodable data)."""
    if looks_like_text(data):
        return {"format": "string", "value": data.decode("utf-8")}
    return {"format": "base64", "value": base64.b64encode(data).decode("ascii")}


__all__ = ["Role", "ValueType", "looks_like_text", "plain_json"]
