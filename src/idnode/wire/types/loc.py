"""10320/LOC: where a handle's object lives, as the XML record the Handle.Net proxy reads and
b2handle and pyhandle write::

    <locations chooseby="locatt,weighted">
      <location id="0" href="https://example.org/a" weight="1" view="json"/>
      <location id="1" href="https://mirror.example.org/a" weight="0"/>
    </locations>

Every location needs an ``href``; ``weight`` is its relative share when a client picks one
(a finite number from 0 up; 1 when absent, 0 meaning "only if nothing else is left"); any
other attribute (``id``, ``view``, ``country``, ...) and the root's ``chooseby`` are kept in
document order. The REST form is the plain ``{"format": "string"}`` of the XML, as HSJ shows
it, so nothing here changes what pyhandle and b2handle read back.

Parsing is defensive: the stdlib's expat, driven directly, with document type declarations,
entity declarations, notations and external entities all refused -- a DTD is how billion-
laughs expansion and external-entity reads reach a parser, and no locations record needs
one. Undefined entity references are malformed XML to expat; the five predefined entities
and character references are fine (they expand to one character each).

Write rule. HSJ's server stores 10320/LOC data unchecked and its proxy skips a record it
cannot read, and clients store free text under this type; so a write is refused only when
(1) the data declares a DTD or an entity anywhere -- so no client parsing the value naively
can be attacked through it -- or (2) the data is an XML document (it starts with ``<?xml``,
``<locations`` or a UTF-16 byte-order mark) that does not parse as a locations record here.
``parse`` itself is strict.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from xml.parsers import expat

from idnode.errors import InvalidValue
from idnode.wire.types.base import ValueType

LOC_TYPE = "10320/loc"  # HANDLE.NET registers it lowercase; b2handle writes 10320/LOC

# a decimal number in Java's float syntax, without sign, hex or "Infinity"
_WEIGHT = re.compile(r"\s*(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")
_DECLARATION = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_DOCUMENT_START = (b"<?xml", b"<locations", b"\xff\xfe", b"\xfe\xff")
_UTF8_BOM = b"\xef\xbb\xbf"
# Characters XML 1.0 cannot carry at all, not even as character references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
_ESCAPES |= {"\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}  # survive attribute normalization

Attributes = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Location:
    """One ``<location>``: its attributes in document order, ``href`` among them."""

    attributes: Attributes

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.attributes if k == name), None)

    @property
    def href(self) -> str:
        return self.get("href") or ""

    @property
    def weight(self) -> float:
        """The location's share when a client picks one at random; 1 when not given."""
        raw = self.get("weight")
        return 1.0 if raw is None else float(raw)


@dataclass(frozen=True, slots=True)
class Locations:
    """A whole 10320/LOC record: the root's attributes and its locations."""

    locations: tuple[Location, ...] = ()
    attributes: Attributes = ()

    @property
    def chooseby(self) -> tuple[str, ...]:
        raw = next((v for k, v in self.attributes if k == "chooseby"), "")
        return tuple(part.strip() for part in raw.split(",") if part.strip())


def _check_unique(attributes: Attributes, where: str) -> None:
    names = [k for k, _ in attributes]
    if len(set(names)) != len(names):
        raise InvalidValue(f"{where}: an attribute appears twice")


def _check_location(loc: Location, n: int) -> None:
    _check_unique(loc.attributes, f"location[{n}]")
    if not loc.href.strip():
        raise InvalidValue(f"location[{n}].href: missing or empty")
    raw = loc.get("weight")
    if raw is not None and not (_WEIGHT.fullmatch(raw) and math.isfinite(float(raw))):
        raise InvalidValue(f"location[{n}].weight: must be a number from 0 up")


class _Builder:
    """expat callbacks that build ``Locations`` and refuse everything a locations record
    has no use for. An exception raised in a callback stops expat and propagates."""

    def __init__(self) -> None:
        self.depth = 0
        self.root: Attributes | None = None
        self.locations: list[Location] = []

    def start(self, name: str, attrs: list[str]) -> None:
        pairs = tuple(zip(attrs[::2], attrs[1::2], strict=True))
        if self.depth == 0:
            if name != "locations":
                raise InvalidValue("locations: the root element must be <locations>")
            self.root = pairs
        elif self.depth == 1:
            if name != "location":
                raise InvalidValue("locations: may hold only <location> elements")
            loc = Location(pairs)
            _check_location(loc, len(self.locations))
            self.locations.append(loc)
        else:
            raise InvalidValue("location: holds no elements")
        self.depth += 1

    def end(self, name: str) -> None:
        self.depth -= 1

    def text(self, data: str) -> None:
        if data.strip():
            raise InvalidValue("locations: text outside attributes is not allowed")

    @staticmethod
    def refuse_dtd(*_: object) -> None:
        raise InvalidValue("locations: a document type declaration (DTD) is not allowed")

    @staticmethod
    def refuse_entity(*_: object) -> None:
        raise InvalidValue("locations: entity and notation declarations are not allowed")


def parse_locations(data: bytes) -> Locations:
    """10320/LOC data -> ``Locations``; ``InvalidValue`` names the rule, never the data."""
    builder = _Builder()
    parser = expat.ParserCreate()
    parser.ordered_attributes = True
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = builder.refuse_dtd
    parser.EntityDeclHandler = builder.refuse_entity
    parser.UnparsedEntityDeclHandler = builder.refuse_entity
    parser.NotationDeclHandler = builder.refuse_entity
    parser.ExternalEntityRefHandler = builder.refuse_entity
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.text
    try:
        parser.Parse(bytes(data), True)
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code) if exc.code else "malformed"
        where = f"{reason}, line {exc.lineno}"
        raise InvalidValue(f"locations: not well-formed XML ({where})") from None
    if builder.root is None:
        raise InvalidValue("locations: no <locations> element")
    return Locations(tuple(builder.locations), builder.root)


def _attributes_xml(attributes: Attributes) -> str:
    out = []
    for name, value in attributes:
        if _NOT_XML.search(name) or _NOT_XML.search(value):
            raise InvalidValue("locations: an attribute holds a character XML cannot carry")
        escaped = "".join(_ESCAPES.get(c, c) for c in value)
        out.append(f' {name}="{escaped}"')
    return "".join(out)


def encode_locations(locs: Locations) -> bytes:
    """``Locations`` -> UTF-8 XML in b2handle's compact layout; ``InvalidValue`` for a record
    ``parse_locations`` would refuse (no href, a bad weight, a name that is no XML name)."""
    _check_unique(locs.attributes, "locations")
    for n, loc in enumerate(locs.locations):
        _check_location(loc, n)
    parts = [f"<locations{_attributes_xml(locs.attributes)}>"]
    parts += [f"<location{_attributes_xml(loc.attributes)} />" for loc in locs.locations]
    parts.append("</locations>")
    data = "".join(parts).encode("utf-8")
    try:
        again = parse_locations(data)
    except InvalidValue:
        again = None
    if again != locs:  # expat is the judge of XML names
        raise InvalidValue("locations: an attribute name is not an XML name")
    return data


def check_locations(data: bytes) -> None:
    """The write rule (module docstring): no declarations anywhere; documents must parse."""
    if _DECLARATION.search(data):
        raise InvalidValue("locations: DTD and entity declarations are not allowed")
    head = data.lstrip()
    if head.startswith(_UTF8_BOM):
        head = head[len(_UTF8_BOM) :].lstrip()
    if head.startswith(_DOCUMENT_START):
        parse_locations(data)


TYPE: ValueType[Locations] = ValueType(
    name=LOC_TYPE, parse=parse_locations, encode=encode_locations, check=check_locations
)

__all__ = [
    "LOC_TYPE",
    "Location",
    "Locations",
    "TYPE",
    "check_locations",
    "encode_locations",
    "parse_locations",
]
