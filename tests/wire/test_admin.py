"""HS_ADMIN data: hand-written vectors from RFC 3651 3.2.1 / HSJ Encoder, fuzzing, JSON form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idnode.codes import AdminPermission as P
from idnode.errors import InvalidValue, MalformedMessage
from idnode.wire.admin import (
    AdminRecord,
    admin_from_json,
    admin_to_json,
    decode_admin,
    encode_admin,
    permissions_from_string,
    permissions_to_string,
)

# 200:0.NA/20.500 with permissions 0x0FF2: all but ADD_HANDLE, ADD_NA and DELETE_NA
VECTOR = bytes.fromhex(
    "0ff2"  # AdminPermission: 0000 1111 1111 0010
    "0000000b"  # length of the admin handle: 11 bytes
    "302e4e412f32302e353030"  # "0.NA/20.500"
    "000000c8"  # index 200
)
VECTOR_PERMS = (
    P.DELETE_HANDLE  # 0x0002
    | P.MODIFY_VALUE  # 0x0010
    | P.REMOVE_VALUE  # 0x0020
    | P.ADD_VALUE  # 0x0040
    | P.MODIFY_ADMIN  # 0x0080
    | P.REMOVE_ADMIN  # 0x0100
    | P.ADD_ADMIN  # 0x0200
    | P.AUTHORIZED_READ  # 0x0400
    | P.LIST_HANDLES  # 0x0800
)

handles = st.text(min_size=1, max_size=40)
indexes = st.integers(-(2**31), 2**31 - 1)
perm_values = st.integers(0, 0x0FFF).map(P)


def test_vector_decodes() -> None:
    assert VECTOR_PERMS == 0x0FF2
    assert decode_admin(VECTOR) == AdminRecord("0.NA/20.500", 200, VECTOR_PERMS)


def test_vector_encodes_byte_for_byte() -> None:
    assert encode_admin(AdminRecord("0.NA/20.500", 200, P(0x0FF2))) == VECTOR


def test_non_ascii_handle_length_counts_bytes() -> None:
    data = encode_admin(AdminRecord("20.500/ä", 1, P.ADD_HANDLE))
    assert data[2:6] == (9).to_bytes(4, "big")  # "ä" is two UTF-8 bytes
    assert decode_admin(data).handle == "20.500/ä"


def test_legacy_two_trailing_bytes_accepted_and_kept() -> None:
    legacy = VECTOR + b"\x00\x00"
    rec = decode_admin(legacy)
    assert rec.legacy_length and rec.handle == "0.NA/20.500" and rec.index == 200
    assert encode_admin(rec) == legacy
    assert admin_to_json(rec)["legacyByteLength"] is True


@pytest.mark.parametrize("extra", [b"\x00", b"\x00\x00\x00", b"\x00" * 4])
def test_other_trailing_bytes_rejected(extra: bytes) -> None:
    with pytest.raises(MalformedMessage):
        decode_admin(VECTOR + extra)


def test_unknown_high_bits_dropped_like_hsj() -> None:
    rec = decode_admin(b"\xff\xff" + VECTOR[2:])
    assert int(rec.permissions) == 0x0FFF


def test_negative_index_is_signed() -> None:
    assert decode_admin(VECTOR[:-4] + b"\xff\xff\xff\xff").index == -1


def test_index_out_of_range_rejected() -> None:
    with pytest.raises(InvalidValue):
        encode_admin(AdminRecord("0.NA/x", 2**32, P(0)))


@pytest.mark.parametrize("cut", range(len(VECTOR)))
def test_truncated_raises_malformed(cut: int) -> None:
    with pytest.raises(MalformedMessage):
        decode_admin(VECTOR[:cut])


def test_invalid_utf8_handle() -> None:
    bad = bytes.fromhex("000100000002c32800000001")
    with pytest.raises(MalformedMessage):
        decode_admin(bad)


def test_huge_length_does_not_allocate() -> None:
    with pytest.raises(MalformedMessage):
        decode_admin(b"\x00\x01\xff\xff\xff\xff")


@given(handles, indexes, perm_values, st.booleans())
def test_round_trip(handle: str, index: int, perms: P, legacy: bool) -> None:
    rec = AdminRecord(handle, index, perms, legacy)
    assert decode_admin(encode_admin(rec)) == rec


@given(st.binary(max_size=64))
def test_random_bytes_only_malformed(data: bytes) -> None:
    try:
        rec = decode_admin(data)
    except MalformedMessage:
        return
    assert isinstance(rec, AdminRecord)


# --- permission strings -------------------------------------------------------------------


def test_permission_string_bit_order() -> None:
    # most significant (LIST_HANDLES) first; HSJ writes perms[11] .. perms[0]
    assert permissions_to_string(P.LIST_HANDLES) == "100000000000"
    assert permissions_to_string(P.ADD_HANDLE) == "000000000001"
    assert permissions_to_string(P(0x0FF2)) == "111111110010"
    # the usual Handle.Net default for a prefix admin: everything except LIST_HANDLES
    # and ADD_NA / DELETE_NA
    perms = permissions_from_string("011111110011")
    assert int(perms) == 0x07F3
    assert P.LIST_HANDLES not in perms and P.AUTHORIZED_READ in perms
    assert P.ADD_NA not in perms and P.DELETE_NA not in perms and P.ADD_HANDLE in perms


@given(perm_values)
def test_permission_string_round_trip(perms: P) -> None:
    text = permissions_to_string(perms)
    assert len(text) == 12 and set(text) <= {"0", "1"}
    assert permissions_from_string(text) == perms


@pytest.mark.parametrize(
    "bad", ["", "01111111001", "0111111100111", "01111111001x", "*", " 11111111111", 7, None]
)
def test_permission_string_strict(bad: object) -> None:
    with pytest.raises(InvalidValue):
        permissions_from_string(bad)  # type: ignore[arg-type]


# --- JSON ---------------------------------------------------------------------------------


def test_json_shape() -> None:
    assert admin_to_json(decode_admin(VECTOR)) == {
        "handle": "0.NA/20.500",
        "index": 200,
        "permissions": "111111110010",
    }


@pytest.mark.parametrize("index", [200, "200", " 200 "])
def test_json_index_may_be_string(index: object) -> None:
    obj = {"handle": "0.NA/20.500", "index": index, "permissions": "111111110010"}
    assert encode_admin(admin_from_json(obj)) == VECTOR


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ([], "data.value"),
        ({"index": 1, "permissions": "0" * 12}, "data.value.handle"),
        ({"handle": "", "index": 1, "permissions": "0" * 12}, "data.value.handle"),
        ({"handle": "a/b", "index": "x", "permissions": "0" * 12}, "data.value.index"),
        ({"handle": "a/b", "index": "2.5", "permissions": "0" * 12}, "data.value.index"),
        ({"handle": "a/b", "index": True, "permissions": "0" * 12}, "data.value.index"),
        ({"handle": "a/b", "index": 2**40, "permissions": "0" * 12}, "data.value.index"),
        ({"handle": "a/b", "index": "²", "permissions": "0" * 12}, "data.value.index"),
        ({"handle": "a/b", "index": 1, "permissions": "01"}, "data.value.permissions"),
        ({"handle": "a/b", "index": 1}, "data.value.permissions"),
    ],
)
def test_json_bad_shapes_name_the_field(obj: object, field: str) -> None:
    with pytest.raises(InvalidValue) as info:
        admin_from_json(obj)
    assert field in info.value.message
