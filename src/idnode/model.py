"""The one record model: a handle is a name and a list of typed, indexed values.

Everything else (wire codecs, stores, JSON) converts to and from these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from idnode.codes import Permission, TTLType

DEFAULT_PERMISSIONS = Permission.ADMIN_READ | Permission.ADMIN_WRITE | Permission.PUBLIC_READ
DEFAULT_TTL = 86400

# Well-known value types (RFC 3651 section 3.2 and common Handle.Net types).
HS_ADMIN = "HS_ADMIN"
HS_SITE = "HS_SITE"
HS_SITE_6 = "HS_SITE.PREFIX"
HS_NA_DELEGATE = "HS_NA_DELEGATE"
HS_SERV = "HS_SERV"
HS_ALIAS = "HS_ALIAS"
HS_PRIMARY = "HS_PRIMARY"
HS_VLIST = "HS_VLIST"
HS_PUBKEY = "HS_PUBKEY"
HS_SECKEY = "HS_SECKEY"
URL = "URL"
EMAIL = "EMAIL"
DESC = "DESC"

NA_PREFIX = "0.NA/"


@dataclass(frozen=True, slots=True)
class ValueReference:
    """A pointer to one value of a handle: ``index:handle``."""

    handle: str
    index: int

    def __str__(self) -> str:
        return f"{self.index}:{self.handle}"


@dataclass(frozen=True, slots=True)
class HandleValue:
    """One value of a handle record (RFC 3651 section 3.1).

    ``data`` is always the raw bytes of the value; typed layouts (HS_ADMIN, HS_SITE, ...) are
    decoded on demand by ``idnode.wire.values``. ``timestamp`` is seconds since the epoch.
    """

    index: int
    type: str
    data: bytes = b""
    permissions: Permission = DEFAULT_PERMISSIONS
    ttl_type: TTLType = TTLType.RELATIVE
    ttl: int = DEFAULT_TTL
    timestamp: int = 0
    references: tuple[ValueReference, ...] = field(default=())

    @property
    def public_read(self) -> bool:
        return bool(self.permissions & Permission.PUBLIC_READ)

    def matches_type(self, wanted: str) -> bool:
        """Type filter of a resolution: exact match, or a prefix ending in a dot.

        RFC 3652 lets a client ask for ``URL`` or for a whole family such as ``HS_SITE.``.
        """
        if wanted.endswith("."):
            return self.type.startswith(wanted) or self.type == wanted[:-1]
        return self.type == wanted


class PublicAnswer(NamedTuple):
    """A record's answer to an anonymous, unfiltered resolution, encoded when it was written.

    Kept by the store beside the record, in the write's own transaction, so an uncached
    resolution is one keyed read plus an envelope (``wire.public_answer``). ``wire``: the
    value list of a resolution response (a 4-byte count, then each public value, by index);
    ``json``: the REST ``values`` array of the same values. ``restricted``: the record also
    holds values an authorised reader may read (no PUBLIC_READ, with ADMIN_READ), so a
    wire query without the PO flag must take the full path (it is challenged there).
    """

    wire: bytes
    json: bytes
    restricted: bool


class StoredWire(NamedTuple):
    """The wire half of a ``PublicAnswer``: what a resolution over UDP or TCP reads
    (``Store.public_wire_now``), without the REST JSON beside it. A named tuple, as
    ``PublicAnswer`` is: one is built for every uncached resolution, and a tuple is the
    cheapest object Python builds."""

    wire: bytes
    restricted: bool


def handle_key(handle: str) -> str:
    """The lookup key of a handle.

    Like the Handle.Net server's default, handles are case-insensitive for ASCII letters:
    ``20.500.1/ABC`` and ``20.500.1/abc`` name the same record. Non-ASCII is kept as is.
    """
    return handle.upper() if handle.isascii() else _ascii_upper(handle)


def _ascii_upper(text: str) -> str:
    return "".join(c.upper() if c.isascii() else c for c in text)
