"""Simple value layouts and the REST ``data`` object of every value type (the registry's
``to_json``/``from_json``; formerly ``wire.handlevalues``)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idnode.codes import AdminPermission
from idnode.crypto.keys import encode_public_key, generate_key, public_key_to_pem
from idnode.errors import InvalidValue, MalformedMessage
from idnode.model import HandleValue, ValueReference
from idnode.wire.admin import AdminRecord, encode_admin
from idnode.wire.site import SiteInfo, encode_site
from idnode.wire.types import from_json, looks_like_text, to_json
from idnode.wire.types.handle_ref import decode_handle_ref, encode_handle_ref
from idnode.wire.types.hs_alias import decode_alias
from idnode.wire.types.hs_seckey import encode_secret_key
from idnode.wire.types.hs_serv import decode_serv
from idnode.wire.vlist import encode_vlist

ADMIN_BYTES = bytes.fromhex("0ff20000000b302e4e412f32302e353030000000c8")
ADMIN_JSON = {"handle": "0.NA/20.500", "index": 200, "permissions": "111111110010"}


@pytest.fixture(scope="module")
def rsa_key():
    return generate_key("rsa", 1024)


# --- HS_SERV / HS_ALIAS / HS_SECKEY ------------------------------------------------------


def test_handle_ref_is_raw_utf8() -> None:
    assert encode_handle_ref("0.NA/20.500") == b"0.NA/20.500"  # no length prefix
    assert decode_serv(b"0.NA/20.500") == "0.NA/20.500"
    assert decode_alias("20.500/ä".encode()) == "20.500/ä"


@pytest.mark.parametrize("bad", [b"", b"\xc3\x28"])
def test_handle_ref_malformed(bad: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode_handle_ref(bad)


def test_handle_ref_empty_refused() -> None:
    with pytest.raises(InvalidValue):
        encode_handle_ref("")


def test_secret_key() -> None:
    assert encode_secret_key("s3cret") == b"s3cret"
    assert encode_secret_key(b"\x00\xff") == b"\x00\xff"
    assert encode_secret_key("s3cret", hashed=True) == hashlib.sha1(b"s3cret").hexdigest().encode()


# --- to_json -----------------------------------------------------------------------------


def test_describe_text() -> None:
    v = HandleValue(1, "URL", b"https://example.org/a")
    assert to_json(v) == {"format": "string", "value": "https://example.org/a"}
    assert to_json(HandleValue(2, "DESC", b"")) == {"format": "string", "value": ""}
    assert to_json(HandleValue(3, "DESC", b"line\n\ttab"))["format"] == "string"


@pytest.mark.parametrize("data", [b"\x00\x01\x02", b"\xff\xfe", b"abc\x07", b"a\x7f"])
def test_describe_binary(data: bytes) -> None:
    out = to_json(HandleValue(1, "X", data))
    assert out == {"format": "base64", "value": base64.b64encode(data).decode()}


def test_describe_admin_any_case() -> None:
    for t in ("HS_ADMIN", "hs_admin"):
        out = to_json(HandleValue(100, t, ADMIN_BYTES))
        assert out == {"format": "admin", "value": ADMIN_JSON}


def test_describe_vlist() -> None:
    data = encode_vlist([ValueReference("20.500/admin", 300)])
    out = to_json(HandleValue(200, "HS_VLIST", data))
    assert out == {"format": "vlist", "value": [{"handle": "20.500/admin", "index": 300}]}


@pytest.mark.parametrize("type_", ["HS_SITE", "HS_SITE.PREFIX", "HS_NA_DELEGATE"])
def test_describe_site(type_: str) -> None:
    data = encode_site(SiteInfo.for_single_server("192.0.2.1"))
    out = to_json(HandleValue(1, type_, data))
    assert out["format"] == "site"
    assert out["value"]["servers"][0]["address"] == "192.0.2.1"


def test_describe_pubkey(rsa_key) -> None:
    out = to_json(HandleValue(300, "HS_PUBKEY", encode_public_key(rsa_key)))
    assert out["format"] == "key"
    assert out["value"]["kty"] == "RSA" and out["value"]["e"] == "AQAB"


def test_undecodable_typed_data_shown_raw() -> None:
    assert to_json(HandleValue(100, "HS_ADMIN", b"oops")) == {
        "format": "string",
        "value": "oops",
    }
    assert to_json(HandleValue(300, "HS_PUBKEY", b"\x00\x01"))["format"] == "base64"


# --- from_json ---------------------------------------------------------------------------


def test_bare_string_like_pyhandle() -> None:
    assert from_json("URL", "https://example.org/") == b"https://example.org/"


def test_string_base64_hex() -> None:
    assert from_json("URL", {"format": "string", "value": "ä"}) == "ä".encode()
    assert from_json("X", {"format": "base64", "value": "AAH/"}) == b"\x00\x01\xff"
    assert from_json("X", {"format": "BASE64", "value": "AAH_"}) == b"\x00\x01\xff"
    assert from_json("X", {"format": "base64", "value": "AQ"}) == b"\x01"
    assert from_json("X", {"format": "hex", "value": "00 01ff"}) == b"\x00\x01\xff"


def test_admin_with_string_index() -> None:
    data = {"format": "admin", "value": ADMIN_JSON | {"index": "200"}}
    assert from_json("HS_ADMIN", data) == ADMIN_BYTES


def test_vlist_and_site() -> None:
    vl = {"format": "vlist", "value": [{"handle": "20.500/admin", "index": 300}]}
    assert from_json("HS_VLIST", vl) == encode_vlist([ValueReference("20.500/admin", 300)])
    site = SiteInfo.for_single_server("192.0.2.1")
    out = to_json(HandleValue(1, "HS_SITE", encode_site(site)))
    assert from_json("HS_SITE", out) == encode_site(site)


def test_key_from_jwk_and_pem(rsa_key) -> None:
    expected = encode_public_key(rsa_key)
    jwk = to_json(HandleValue(300, "HS_PUBKEY", expected))
    assert from_json("HS_PUBKEY", jwk) == expected
    pem = public_key_to_pem(rsa_key).decode()
    assert from_json("HS_PUBKEY", {"format": "key", "value": pem}) == expected


@pytest.mark.parametrize(
    ("type_", "data", "field"),
    [
        ("URL", 42, "data"),
        ("URL", None, "data"),
        ("URL", {"value": "x"}, "data.format"),
        ("URL", {"format": "string"}, "data.value"),
        ("URL", {"format": "string", "value": 5}, "data.value"),
        ("URL", {"format": "json", "value": "x"}, "data.format"),
        ("X", {"format": "base64", "value": "A"}, "data.value"),
        ("X", {"format": "base64", "value": "A$=="}, "data.value"),
        ("X", {"format": "hex", "value": "0g"}, "data.value"),
        (
            "HS_ADMIN",
            {"format": "admin", "value": {"handle": "a/b", "index": 1}},
            "data.value.permissions",
        ),
        ("HS_ADMIN", "0.NA/20.500", "not a valid HS_ADMIN"),
        ("HS_VLIST", {"format": "string", "value": "x"}, "not a valid HS_VLIST"),
        ("HS_SITE", {"format": "base64", "value": "AAAA"}, "not a valid HS_SITE"),
        ("HS_PUBKEY", {"format": "key", "value": {"kty": "EC"}}, "data.value.kty"),
        (
            "HS_PUBKEY",
            {"format": "key", "value": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}},
            "too weak",
        ),
    ],
)
def test_bad_json_names_the_field(type_: str, data: object, field: str) -> None:
    with pytest.raises(InvalidValue) as info:
        from_json(type_, data)
    assert field in info.value.message


@given(st.binary(max_size=64))
def test_any_bytes_survive_describe_and_back(data: bytes) -> None:
    assert from_json("X", to_json(HandleValue(1, "X", data))) == data


@given(st.text(max_size=40))
def test_text_is_shown_as_string_when_clean(text: str) -> None:
    out = to_json(HandleValue(1, "DESC", text.encode()))
    assert out["format"] == ("string" if looks_like_text(text.encode()) else "base64")
    assert from_json("DESC", out) == text.encode()


@given(
    st.text(min_size=1, max_size=20),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(0, 0xFFF),
)
def test_admin_survives_describe_and_back(handle: str, index: int, perms: int) -> None:
    data = encode_admin(AdminRecord(handle, index, AdminPermission(perms)))
    out = to_json(HandleValue(100, "HS_ADMIN", data))
    assert out["format"] == "admin"
    assert from_json("HS_ADMIN", out) == data


@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_iso_timestamp_is_utc_to_the_second(seconds: int) -> None:
    """Every 32-bit stamp (a value's timestamp, an absolute TTL) reads as its UTC time."""
    from datetime import UTC, datetime

    from idnode.wire.json import iso_timestamp

    expected = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert iso_timestamp(seconds) == expected
