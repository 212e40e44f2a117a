"""The typed-value registry: every type's bytes and REST JSON round-trip, names match in any
case, and a refusal names the rule but never repeats the value's bytes."""

from __future__ import annotations

import base64
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idnode.codes import AdminPermission
from idnode.crypto.keys import encode_public_key, generate_key
from idnode.errors import InvalidValue
from idnode.model import HandleValue, ValueReference
from idnode.service.validate import check_record
from idnode.wire.admin import AdminRecord
from idnode.wire.site import ServerRecord, ServiceInterface, SiteInfo
from idnode.wire.types import (
    TYPES,
    Role,
    ValueType,
    check_data,
    from_json,
    hs_pubkey,
    loc,
    lookup,
    to_json,
    validate,
)
from idnode.wire.types.loc import Location, Locations

NAMES = sorted(t.name for t in TYPES)
KEYS = [generate_key("rsa", 1024), generate_key("dsa", 1024)]
KEYS += [generate_key("sm2"), generate_key("ed25519")]

# --- strategies: one per registered type --------------------------------------------------

int32 = st.integers(-(2**31), 2**31 - 1)
handles = st.text(min_size=1, max_size=30)
admins = st.builds(
    AdminRecord, handles, int32, st.integers(0, 0xFFF).map(AdminPermission), st.booleans()
)
vlists = st.lists(st.builds(ValueReference, handles, int32), max_size=5).map(tuple)
u8 = st.integers(0, 255)
# only what the REST form can say: query/admin bits, the primary/multi-primary flags,
# addresses that do not read back as IPv4 (HSJ's 12-zero-byte rule), keys as raw bytes
interfaces = st.builds(ServiceInterface, st.integers(0, 3), u8, st.integers(0, 2**32 - 1))
addresses = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address) | st.integers(
    2**96, 2**128 - 1
).map(ipaddress.IPv6Address)
servers = st.builds(
    ServerRecord,
    int32,
    addresses,
    st.binary(max_size=24).filter(lambda b: not b.startswith(b"\x00\x00\x00")),
    st.lists(interfaces, max_size=3).map(tuple),
)
sites = st.builds(
    SiteInfo,
    st.integers(0, 0xFFFF),
    st.tuples(u8, u8),
    st.integers(0, 0xFFFF),
    st.sampled_from([0, 0x40, 0x80, 0xC0]),
    u8,
    st.text(max_size=10),
    st.lists(st.tuples(st.text(max_size=8), st.text(max_size=12)), max_size=3).map(tuple),
    st.lists(servers, max_size=2).map(tuple),
)
public_keys = st.sampled_from(KEYS).map(lambda k: k.public_key())
xml_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,8}", fullmatch=True)
xml_text = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff")
    | st.sampled_from("\t\n\r"),
    max_size=20,
)
weights = st.one_of(
    st.none(), st.integers(0, 5).map(str), st.floats(0, 1).map(lambda f: f"{f:.3f}")
)


@st.composite
def locations_records(draw) -> Locations:
    def attrs(required: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        names = draw(st.lists(xml_names, unique=True, max_size=3))
        taken = {name for name, _ in required}
        extra = [(n, draw(xml_text)) for n in names if n not in taken]
        return tuple(required + extra)

    locs = []
    for _ in range(draw(st.integers(0, 3))):
        required = [("href", draw(xml_text.filter(str.strip)))]
        weight = draw(weights)
        if weight is not None:
            required.append(("weight", weight))
        locs.append(Location(attrs(required)))
    return Locations(tuple(locs), attrs([]))


TYPED = {
    "HS_ADMIN": admins,
    "HS_SITE": sites,
    "HS_SITE.PREFIX": sites,
    "HS_NA_DELEGATE": sites,
    "HS_VLIST": vlists,
    "HS_PUBKEY": public_keys,
    "HS_SECKEY": st.binary(max_size=40),
    "HS_SERV": handles,
    "HS_ALIAS": handles,
    "10320/loc": locations_records(),
}


def test_every_registered_type_has_a_strategy_here():
    assert sorted(TYPED) == NAMES


# --- bytes ---------------------------------------------------------------------------------


def _same(type_: ValueType, a: object, b: object) -> bool:
    if type_ is hs_pubkey.TYPE:  # key objects compare by their encoding
        return encode_public_key(a) == encode_public_key(b)  # type: ignore[arg-type]
    return a == b


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_encode_then_parse_gives_the_object_back(name: str, data: st.DataObject) -> None:
    type_ = lookup(name)
    assert type_ is not None
    obj = data.draw(TYPED[name])
    raw = type_.encode(obj)
    assert _same(type_, type_.parse(raw), obj)
    assert type_.encode(type_.parse(raw)) == raw
    validate(HandleValue(1, name, raw))


# --- REST JSON -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_json_render_then_read_gives_the_bytes_back(name: str, data: st.DataObject) -> None:
    type_ = lookup(name)
    assert type_ is not None
    raw = type_.encode(data.draw(TYPED[name]))
    shown = to_json(HandleValue(1, name, raw))
    assert shown["format"] == (type_.json_format or shown["format"])
    assert shown["format"] in {"admin", "site", "vlist", "key", "string", "base64"}
    assert from_json(name, shown) == raw


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("HS_ADMIN", "admin"),
        ("HS_SITE", "site"),
        ("HS_SITE.PREFIX", "site"),
        ("HS_NA_DELEGATE", "site"),
        ("HS_VLIST", "vlist"),
        ("HS_PUBKEY", "key"),
        ("HS_SECKEY", None),
        ("HS_SERV", None),
        ("HS_ALIAS", None),
        ("10320/loc", None),
    ],
)
def test_json_formats_are_the_ones_pyhandle_and_b2handle_read(name: str, fmt: str | None):
    type_ = lookup(name)
    assert type_ is not None and type_.json_format == fmt


# --- names, roles, rules -------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_names_match_in_any_case(name: str) -> None:
    assert lookup(name.lower()) is lookup(name.upper()) is lookup(name)
    assert lookup(name) is not None


def test_unknown_types_are_opaque() -> None:
    assert lookup("URL") is None
    check_data("URL", b"\x00\xff anything")
    assert to_json(HandleValue(1, "URL", b"https://x")) == {
        "format": "string",
        "value": "https://x",
    }


def test_roles() -> None:
    roles = {t.name: t.role for t in TYPES}
    assert roles["HS_SITE"] is Role.SITE
    assert roles["HS_SITE.PREFIX"] is roles["HS_NA_DELEGATE"] is Role.PREFIX_SITE
    assert roles["HS_SERV"] is Role.SERVICE_HANDLE
    assert {n for n, r in roles.items() if r is Role.DATA} == {
        "HS_ADMIN",
        "HS_VLIST",
        "HS_PUBKEY",
        "HS_SECKEY",
        "HS_ALIAS",
        "10320/loc",
    }


@pytest.mark.parametrize(
    ("name", "data", "rule"),
    [
        ("HS_ADMIN", b"\x0f", "admin.permissions"),
        ("HS_SITE", b"\x00\x01", "site.protocol_version"),
        ("HS_VLIST", b"\x00\x00\x00\x01", "vlist"),
        ("HS_PUBKEY", b"\x00\x00\x00\x02", "pubkey.type"),
        ("HS_SERV", b"", "empty handle reference"),
        ("HS_ALIAS", b"\xc3\x28", "invalid UTF-8"),
        ("10320/loc", b"<locations><location/></locations>", "location[0].href"),
    ],
)
def test_refusals_name_the_type_and_the_rule(name: str, data: bytes, rule: str) -> None:
    with pytest.raises(InvalidValue) as info:
        validate(HandleValue(7, name, data))
    assert info.value.message.startswith(f"value 7: not a valid {name}: ")
    assert rule in info.value.message


def test_an_unknown_key_type_is_refused_without_quoting_it() -> None:
    """``decode_public_key`` quotes the type name it read; the write path must not."""
    data = b"\x00\x00\x00\x0cSECRET-LEAKS\x00\x00"
    with pytest.raises(InvalidValue) as info:
        check_record([HandleValue(300, "HS_PUBKEY", data)])
    assert "SECRET" not in info.value.message
    assert "pubkey.type: unsupported key type" in info.value.message


@pytest.mark.parametrize("name", NAMES)
@given(prefix=st.binary(max_size=12), suffix=st.binary(max_size=12))
def test_a_refusal_never_repeats_the_data(name: str, prefix: bytes, suffix: bytes) -> None:
    data = prefix + b"\x00\x00\x00\x08LEAKLEAK" + suffix
    try:
        validate(HandleValue(1, name, data))
    except InvalidValue as exc:
        assert "LEAK" not in exc.message
    try:
        from_json(name, {"format": "base64", "value": base64.b64encode(data).decode()})
    except InvalidValue as exc:
        assert "LEAK" not in exc.message


def test_loc_round_trip_is_b2handles_layout() -> None:
    record = Locations((Location((("href", "http://bar.bar"), ("id", "0"))),))
    assert loc.encode_locations(record) == (
        b'<locations><location href="http://bar.bar" id="0" /></locations>'
    )
