"""The 24-byte message header (RFC 3652 2.2.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.errors import MalformedMessage
from idnode.wire.header import HEADER_SIZE, Header, decode_header, encode_header
from tests.wire.msgwire_support import flags, u8, u16, u32

# A resolution request header as HSJ writes one with its defaults (recursive, cache-certify,
# public-only; siteInfoSerial -1 written as 0xffff).
VECTOR = bytes.fromhex(
    "00000001"  # opcode 1 RESOLUTION
    "00000000"  # response code 0: a request
    "19000000"  # REC 0x10000000 | CA 0x08000000 | PO 0x01000000
    "ffff"  # site info serial
    "00"  # recursion count
    "00"  # reserved
    "5f5e1000"  # expiration time
    "00000022"  # body length 34
)


def test_decode_vector():
    h = decode_header(VECTOR)
    assert h == Header(
        opcode=OpCode.RESOLUTION,
        response_code=0,
        flags=OpFlag.REC | OpFlag.CA | OpFlag.PO,
        site_serial=0xFFFF,
        recursion_count=0,
        expiration=0x5F5E1000,
        body_length=34,
    )
    assert isinstance(h.opcode, OpCode) and not h.is_response
    assert h.has(OpFlag.PO) and not h.has(OpFlag.RD)


def test_encode_vector():
    h = Header(OpCode.RESOLUTION, 0, OpFlag.REC | OpFlag.CA | OpFlag.PO, 0xFFFF, 0, 0x5F5E1000, 34)
    assert encode_header(h) == VECTOR
    assert HEADER_SIZE == 24


def test_reserved_byte_ignored_and_unknown_numbers_kept():
    data = bytes.fromhex("000003eb 00000385 00000001 0001 07 ff 00000000 00000000")
    h = decode_header(data)
    assert h.opcode == 1003 and not isinstance(h.opcode, OpCode)  # HSJ OC_BACKUP_SERVER
    assert h.response_code == 901 and isinstance(h.response_code, ResponseCode)
    assert int(h.flags) == 1  # unassigned bit kept
    assert h.recursion_count == 7
    assert encode_header(h)[19] == 0  # reserved written as zero


def test_short_header():
    with pytest.raises(MalformedMessage, match="header"):
        decode_header(VECTOR[:23])
    with pytest.raises(MalformedMessage, match="header"):
        decode_header(VECTOR, offset=1)


def test_encode_out_of_range():
    with pytest.raises(ValueError):
        encode_header(Header(1, recursion_count=256))
    with pytest.raises(ValueError):
        encode_header(Header(1, site_serial=1 << 16))


@given(st.builds(Header, u32, u32, flags, u16, u8, u32, u32))
def test_round_trip(h):
    assert decode_header(encode_header(h)) == h
