"""Envelope layout (RFC 3652 2.2.1 as HSJ 2.10/2.11 writes it) and version negotiation."""

from __future__ import annotations

import pytest
from hypothesis import given

from idnode.errors import MalformedMessage, ProtocolError
from idnode.wire.envelope import (
    ENVELOPE_SIZE,
    MAX_MESSAGE_LENGTH,
    SUPPORTED_VERSIONS,
    Envelope,
    decode_envelope,
    encode_envelope,
    reply_version,
)
from tests.wire.msgwire_support import envelopes

# What an HSJ 2.11 client sends: speaks 2.10 (COMPATIBILITY version), suggests 2.11.
HSJ_ENVELOPE = bytes.fromhex(
    "02 0a"  # major 2, minor 10
    "02"  # flags: none set | suggested major 2 in the low bits
    "0b"  # suggested minor 11
    "00000000"  # session id 0
    "0000abcd"  # request id 0xabcd
    "00000000"  # sequence number 0
    "0000003e"  # message length 62
)


def test_size_constant():
    assert ENVELOPE_SIZE == 20 == len(HSJ_ENVELOPE)


def test_decode_hsj_vector():
    env = decode_envelope(HSJ_ENVELOPE)
    assert env == Envelope(
        major=2,
        minor=10,
        suggest_major=2,
        suggest_minor=11,
        request_id=0xABCD,
        message_length=62,
    )
    assert env.version == (2, 10) and env.suggested_version == (2, 11)


def test_encode_hsj_vector():
    env = Envelope(major=2, minor=10, suggest_major=2, suggest_minor=11, request_id=0xABCD)
    env.message_length = 62
    assert encode_envelope(env) == HSJ_ENVELOPE


def test_plain_rfc_sender_suggest_zero_means_same_version():
    # An RFC 3652 2.1 sender: MessageFlag 0x0000, i.e. no suggested version at all.
    data = bytes.fromhex("0201 0000 00000001 00000002 00000003 00000018")
    env = decode_envelope(data)
    assert env.suggested_version == (2, 1)
    assert (env.session_id, env.request_id, env.sequence, env.message_length) == (1, 2, 3, 24)
    assert reply_version(env) == (2, 1)


def test_flag_bits():
    # compressed 0x80 | encrypted 0x40 | truncated 0x20 | suggested major 2
    data = bytes.fromhex("020b e20b") + bytes(16)
    env = decode_envelope(data)
    assert env.compressed and env.encrypted and env.truncated
    assert env.suggested_version == (2, 11)
    assert encode_envelope(env) == data
    only_truncated = Envelope(truncated=True, suggest_major=2, suggest_minor=11)
    assert encode_envelope(only_truncated)[2] == 0x22


def test_unused_flag_bits_are_ignored():
    # bits 0x1c are unassigned; HSJ masks the suggested major with 0x03
    env = decode_envelope(bytes.fromhex("0201 1e0b") + bytes(16))
    assert env.suggested_version == (2, 11)
    assert not (env.compressed or env.encrypted or env.truncated)


@pytest.mark.parametrize("size", [0, 1, 19])
def test_short_envelope(size):
    with pytest.raises(MalformedMessage, match="envelope"):
        decode_envelope(HSJ_ENVELOPE[:size])


def test_huge_length_rejected_before_anything_else():
    data = bytes.fromhex("0201020b 00000000 00000001 00000000 ffffffff")
    with pytest.raises(MalformedMessage, match="message_length"):
        decode_envelope(data)


def test_length_limit_is_a_parameter():
    env = Envelope(message_length=5000)
    data = encode_envelope(env)
    assert decode_envelope(data).message_length == 5000
    with pytest.raises(MalformedMessage):
        decode_envelope(data, max_message=4999)
    assert MAX_MESSAGE_LENGTH == 1 << 20


def test_encode_rejects_out_of_range():
    with pytest.raises(ValueError):
        encode_envelope(Envelope(suggest_major=4))
    with pytest.raises(ValueError):
        encode_envelope(Envelope(major=256))
    with pytest.raises(ValueError):
        encode_envelope(Envelope(request_id=1 << 32))


@given(envelopes)
def test_round_trip(env):
    assert decode_envelope(encode_envelope(env)) == env


@pytest.mark.parametrize(
    ("own", "suggested", "expected"),
    [
        ((2, 1), (2, 1), (2, 1)),  # RFC 3652 client
        ((2, 10), (2, 11), (2, 11)),  # HSJ 2.11 client
        ((2, 10), (2, 10), (2, 10)),  # HSJ 2.10 client
        ((2, 11), (2, 11), (2, 11)),
        ((2, 1), (2, 11), (2, 11)),  # speaks 2.1 but can do 2.11
        ((2, 11), (2, 1), (2, 11)),  # the higher of the two counts
        ((2, 10), (2, 12), (2, 11)),  # newer than us: capped at ours
        ((2, 10), (3, 0), (2, 11)),
        ((2, 9), (2, 9), (2, 1)),  # IDIS/teleinfo 2.9: rounded down to what we support
        ((2, 5), (2, 5), (2, 1)),
        ((2, 0), (2, 0), (2, 1)),  # never below 2.1
    ],
)
def test_reply_version(own, suggested, expected):
    env = Envelope(
        major=own[0], minor=own[1], suggest_major=suggested[0], suggest_minor=suggested[1]
    )
    assert reply_version(env) == expected
    assert reply_version(env) in SUPPORTED_VERSIONS


@pytest.mark.parametrize("major", [0, 1, 3, 5, 255])
def test_reply_version_rejects_other_majors(major):
    env = Envelope(major=major, minor=0, suggest_major=2, suggest_minor=11)
    with pytest.raises(ProtocolError, match="unsupported protocol version"):
        reply_version(env)
