"""HS_VLIST data: a 4-byte count of (UTF8 handle, 4-byte index) references."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idnode.errors import InvalidValue, MalformedMessage
from idnode.model import ValueReference
from idnode.wire.vlist import decode_vlist, encode_vlist, vlist_from_json, vlist_to_json

VECTOR = bytes.fromhex(
    "00000002"  # two references
    "0000000b"  # 11-byte handle
    "302e4e412f32302e353030"  # "0.NA/20.500"
    "000000c8"  # index 200
    "0000000c"  # 12-byte handle
    "32302e3530302f61646d696e"  # "20.500/admin"
    "0000012c"  # index 300
)
REFS = (ValueReference("0.NA/20.500", 200), ValueReference("20.500/admin", 300))

refs_strategy = st.lists(
    st.builds(ValueReference, st.text(max_size=30), st.integers(-(2**31), 2**31 - 1)),
    max_size=8,
).map(tuple)


def test_vector() -> None:
    assert decode_vlist(VECTOR) == REFS
    assert encode_vlist(REFS) == VECTOR


def test_empty() -> None:
    assert encode_vlist([]) == b"\x00\x00\x00\x00"
    assert decode_vlist(b"\x00\x00\x00\x00") == ()


@pytest.mark.parametrize("cut", range(len(VECTOR)))
def test_truncated(cut: int) -> None:
    with pytest.raises(MalformedMessage):
        decode_vlist(VECTOR[:cut])


def test_trailing_bytes_rejected() -> None:
    with pytest.raises(MalformedMessage):
        decode_vlist(VECTOR + b"\x00")


def test_count_larger_than_data() -> None:
    with pytest.raises(MalformedMessage):
        decode_vlist(b"\x7f\xff\xff\xff" + VECTOR[4:])


def test_index_out_of_range() -> None:
    with pytest.raises(InvalidValue):
        encode_vlist([ValueReference("a/b", 2**31)])


@given(refs_strategy)
def test_round_trip(refs: tuple[ValueReference, ...]) -> None:
    assert decode_vlist(encode_vlist(refs)) == refs


@given(st.binary(max_size=64))
def test_random_bytes_only_malformed(data: bytes) -> None:
    try:
        decode_vlist(data)
    except MalformedMessage:
        pass


def test_json() -> None:
    obj = vlist_to_json(REFS)
    assert obj == [
        {"handle": "0.NA/20.500", "index": 200},
        {"handle": "20.500/admin", "index": 300},
    ]
    assert vlist_from_json(obj) == REFS
    assert vlist_from_json([{"handle": "a/b", "index": "7"}]) == (ValueReference("a/b", 7),)


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"handle": "a/b", "index": 1}, "data.value"),
        (["a/b"], "data.value[0]"),
        ([{"index": 1}], "data.value[0].handle"),
        ([{"handle": "a/b", "index": 1}, {"handle": "a/b", "index": "x"}], "data.value[1].index"),
    ],
)
def test_json_bad_shapes(obj: object, field: str) -> None:
    with pytest.raises(InvalidValue) as info:
        vlist_from_json(obj)
    assert field in info.value.message
