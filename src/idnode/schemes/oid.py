"""Object identifiers (ISO/IEC 9834-1, ITU-T X.660) as Handle identifiers: ``urn:oid:`` names.

An OID is a path of arcs from the registration tree's root, ``1.2.156.10011``: decimal
integers without leading zeros, at least two; the first is 0 (ITU-T), 1 (ISO) or 2 (joint),
and under 0 and 1 the second is at most 39 (X.690's first-octet encoding). Written
``urn:oid:1.2.156.10011`` (RFC 3061) or ``oid:1.2.156.10011``. China's national OID arc is
1.2.156. Identifiers: ``<prefix>/oid/<dotted arcs>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from idnode.schemes.base import SchemeError, strip_tag, under_prefix

TAGS = ("urn:oid:", "oid:")
HANDLE_TAG = "oid"
_ARC = re.compile(r"0|[1-9][0-9]*")
MAX_ARCS = 128


def parse(dotted: str) -> tuple[int, ...]:
    """The arcs of a dotted OID, checked; ``SchemeError`` otherwise."""
    arcs = dotted.split(".")
    if len(arcs) < 2:
        raise SchemeError(f"OID {dotted!r} needs at least two arcs, e.g. 1.2.156")
    if len(arcs) > MAX_ARCS:
        raise SchemeError(f"OID {dotted!r} has more than {MAX_ARCS} arcs")
    for arc in arcs:
        if not _ARC.fullmatch(arc):
            raise SchemeError(
                f"OID {dotted!r}: arc {arc!r} is not a decimal number without leading zeros"
            )
    numbers = tuple(int(a) for a in arcs)
    if numbers[0] > 2:
        raise SchemeError(f"OID {dotted!r}: the first arc is 0, 1 or 2")
    if numbers[0] < 2 and numbers[1] > 39:
        raise SchemeError(f"OID {dotted!r}: under arc {numbers[0]} the second arc is at most 39")
    return numbers


@dataclass(frozen=True)
class OidScheme:
    """The OID plugin: ``urn:oid:1.2.156.1`` <-> ``<prefix>/oid/1.2.156.1``."""

    prefix: str
    name: str = "oid"

    def recognises(self, text: str) -> bool:
        return strip_tag(text, TAGS) is not None

    def to_handle(self, text: str) -> str:
        dotted = strip_tag(text, TAGS)
        if dotted is None:
            raise SchemeError(f"{text!r} is not an OID (urn:oid:<arcs>)")
        arcs = parse(dotted)
        return f"{self.prefix}/{HANDLE_TAG}/" + ".".join(str(a) for a in arcs)

    def from_handle(self, handle: str) -> str | None:
        dotted = under_prefix(self.prefix, handle, HANDLE_TAG)
        if dotted is None:
            return None
        try:
            return "urn:oid:" + ".".join(str(a) for a in parse(dotted))
        except SchemeError:
            return None
