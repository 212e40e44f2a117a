"""Whole messages: complete hand-written vectors, response building, round trips."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from hypothesis import given, settings

from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.errors import MalformedMessage, ProtocolError
from idnode.wire import bodies as b
from idnode.wire.credential import Credential
from idnode.wire.envelope import Envelope, decode_envelope
from idnode.wire.header import Header
from idnode.wire.message import (
    Message,
    decode_message,
    decode_message_bytes,
    encode_header_body,
    encode_message,
    encode_payload,
    make_challenge,
    make_error,
    make_response,
    patch_request_id,
)
from tests.wire.msgwire_support import REQUEST, URL_VALUE, hx, messages

REQUEST_FLAGS = OpFlag.REC | OpFlag.CA | OpFlag.PO | OpFlag.RD


def test_decode_complete_request_vector():
    msg = decode_message_bytes(REQUEST)
    assert msg.envelope == Envelope(
        major=2, minor=10, suggest_major=2, suggest_minor=11, request_id=0x1234, message_length=62
    )
    assert msg.header == Header(OpCode.RESOLUTION, 0, REQUEST_FLAGS, 0xFFFF, 0, 0x5F5E1000, 34)
    assert msg.body == b.ResolutionRequest("0.NA/20.500", (), ("HS_SITE",))
    assert msg.credential is None and msg.request_digest is None
    assert msg.header_body == REQUEST[20:-4]
    assert not msg.is_response and msg.opcode == 1 and msg.request_id == 0x1234


def test_encode_reproduces_request_vector():
    msg = Message(
        header=Header(OpCode.RESOLUTION, 0, REQUEST_FLAGS, 0xFFFF, 0, 0x5F5E1000),
        body=b.ResolutionRequest("0.NA/20.500", types=("HS_SITE",)),
        envelope=Envelope(minor=10, request_id=0x1234),
    )
    assert encode_message(msg) == REQUEST
    assert encode_payload(msg) == REQUEST[20:]
    assert encode_header_body(msg) == REQUEST[20:-4]


def test_answer_with_digest_vector():
    request = decode_message_bytes(REQUEST)
    response = make_response(request, b.ResolutionResponse("0.NA/20.500", (URL_VALUE,)))
    sha256 = hashlib.sha256(REQUEST[20:-4]).digest()  # digest of header + body as received
    value = hx(
        "00000001 5f5e1000 00 00015180 0e 00000003 55524c 0000000a 687474703a2f2f612e62 00000000"
    )
    body = hx("0000000b 302e4e412f32302e353030 00000001") + value
    expected = (
        hx(
            """
            02 0b 02 0b       # answered in 2.11 (the client suggested it), we suggest 2.11
            00000000 00001234 00000000
            """
        )
        + (24 + 33 + len(body) + 4).to_bytes(4, "big")
        + hx(
            """
            00000001          # opcode RESOLUTION
            00000001          # SUCCESS
            19800000          # REC | CA | PO echoed, RD because a digest follows
            0000 00 00 00000000
            """
        )
        + (33 + len(body)).to_bytes(4, "big")
        + hx("03")  # digest id 3: SHA-256 (version >= 2.7)
        + sha256
        + body
        + hx("00000000")
    )
    assert encode_message(response) == expected
    back = decode_message_bytes(expected)
    assert back.request_digest == b.RequestDigest(3, sha256)
    assert back.body == response.body


def test_make_response_copies_ids_and_picks_version():
    request = Message(
        Header(OpCode.DELETE_HANDLE, 0, OpFlag.AT | OpFlag.KC | OpFlag.OW, recursion_count=2),
        b.DeleteHandleRequest("20/x"),
        Envelope(major=2, minor=1, suggest_major=2, suggest_minor=1, session_id=9, request_id=77),
    )
    r = make_response(request, b.EmptyResponse(), flags=OpFlag.KC, expiration=123)
    assert (r.envelope.session_id, r.envelope.request_id) == (9, 77)
    assert r.envelope.version == (2, 1) and r.envelope.suggested_version == (2, 11)
    assert r.header.opcode == OpCode.DELETE_HANDLE and r.header.response_code == 1
    assert r.header.flags == OpFlag.AT | OpFlag.KC  # AT echoed, OW not, KC asked for
    assert r.header.recursion_count == 2 and r.header.expiration == 123
    assert r.request_digest is None
    decoded = decode_message_bytes(encode_message(r))
    assert decoded.body == b.EmptyResponse()


def test_digest_algorithm_follows_reply_version():
    request = decode_message_bytes(REQUEST)
    old = replace(request, envelope=Envelope(minor=1, suggest_major=2, suggest_minor=1))
    r = make_response(old, b.ErrorResponse("no"), ResponseCode.HANDLE_NOT_FOUND)
    assert r.request_digest == b.RequestDigest(2, hashlib.sha1(REQUEST[20:-4]).digest())
    assert r.header.flags & OpFlag.RD


def test_digest_of_a_built_request_is_computed_from_its_encoding():
    request = Message(Header(1, flags=OpFlag.RD), b.ResolutionRequest("20/a"), Envelope())
    r = make_response(request, b.ResolutionResponse("20/a"))
    assert r.request_digest == b.digest_request(encode_header_body(request), 3)


def test_challenge():
    request = decode_message_bytes(REQUEST)
    request = replace(request, header=replace(request.header, flags=OpFlag(0)))  # no RD
    nonce = bytes(range(16))
    c = make_challenge(request, nonce)
    assert c.header.response_code == ResponseCode.AUTHENTICATION_NEEDED
    assert c.body == b.ChallengeResponse(nonce, b.digest_request(request.header_body, 3))
    wire = encode_message(c)
    assert wire[20 + 8 : 20 + 12] == hx("00800000")  # RD set: HSJ always sends the digest
    assert wire[20 + 24] == 3 and wire[20 + 24 + 33 : 20 + 24 + 37] == hx("00000010")
    back = decode_message_bytes(wire)
    assert back.body == c.body and back.request_digest == c.body.digest


def test_make_error_without_header():
    env = decode_envelope(REQUEST)
    e = make_error(env, None, ResponseCode.PROTOCOL_ERROR, "bad body")
    assert e.header.opcode == OpCode.RESERVED and e.header.response_code == 4
    assert e.envelope.request_id == 0x1234 and e.envelope.version == (2, 11)
    wire = encode_message(e)
    assert wire[20:] == hx(
        """
        00000000 00000004 00000000 0000 00 00 00000000
        0000000c                   # body length 12
        00000008 62616420626f6479  # "bad body"
        00000000
        """
    )


def test_make_error_answers_bad_versions_in_2_1():
    env = Envelope(major=5, minor=0, request_id=3)
    e = make_error(env, Header(1, flags=OpFlag.PO), ResponseCode.PROTOCOL_ERROR, "v", (1,))
    assert e.envelope.version == (2, 1) and e.header.opcode == 1
    assert e.header.flags == OpFlag.PO
    assert decode_message_bytes(encode_message(e)).body == b.ErrorResponse("v", (1,))
    with pytest.raises(ValueError):
        make_error(env, None, ResponseCode.SUCCESS, "x")
    with pytest.raises(ValueError):
        make_error(env, None, ResponseCode.AUTHENTICATION_NEEDED, "x")


def test_make_response_rejects_unsupported_version():
    request = Message(Header(1), b.ResolutionRequest("x"), Envelope(major=5, minor=0))
    with pytest.raises(ProtocolError):
        make_response(request, b.ResolutionResponse("x"))


def test_body_must_match_header():
    bad = Message(Header(1, ResponseCode.HANDLE_NOT_FOUND), b.ResolutionResponse("x"))
    with pytest.raises(ValueError, match="ErrorResponse"):
        encode_message(bad)
    with pytest.raises(ValueError, match="request digest"):
        encode_message(
            Message(
                Header(1), b.ResolutionRequest("x"), request_digest=b.RequestDigest(1, bytes(16))
            )
        )


def test_rd_flag_follows_digest_presence_on_responses():
    m = Message(Header(101, 1, OpFlag.RD), b.EmptyResponse())
    wire = encode_message(m)
    assert decode_message_bytes(wire).header.flags == OpFlag(0)


def test_credential_section():
    cred = Credential("HS_SIGNED", "SHA-256", b"\x01\x02")
    m = Message(Header(101, 1), b.EmptyResponse(), credential=cred)
    wire = encode_message(m)
    assert decode_message_bytes(wire).credential == cred
    # a message may simply end after the body (HSJ reads the credential only if present)
    no_section = wire[: -4 - len(cred.encode())]
    env = decode_envelope(no_section, 1 << 20)
    assert decode_message(env, no_section[20:]).credential is None
    with pytest.raises(MalformedMessage):
        decode_message(env, wire[20:] + b"\x00")  # bytes after the credential


def test_encrypted_or_compressed_payload_is_not_decoded():
    env = decode_envelope(REQUEST)
    with pytest.raises(MalformedMessage, match="decrypt"):
        decode_message(replace(env, encrypted=True), REQUEST[20:])
    with pytest.raises(MalformedMessage, match="compressed"):
        decode_message(replace(env, compressed=True), REQUEST[20:])


def test_length_mismatch():
    with pytest.raises(MalformedMessage, match="announces"):
        decode_message_bytes(REQUEST + b"\x00")
    with pytest.raises(MalformedMessage):
        decode_message_bytes(REQUEST[:-1])


def test_patch_request_id():
    patched = patch_request_id(REQUEST, 0xDEADBEEF)
    assert patched[8:12] == hx("deadbeef") and patched[:8] == REQUEST[:8]
    assert patched[12:] == REQUEST[12:]
    assert decode_message_bytes(patched).request_id == 0xDEADBEEF
    with pytest.raises(ValueError):
        patch_request_id(b"short", 1)


@settings(max_examples=300)
@given(messages())
def test_message_round_trip(msg):
    wire = encode_message(msg)
    back = decode_message_bytes(wire)
    assert back.body == msg.body
    assert back.credential == msg.credential
    assert back.request_digest == msg.request_digest
    assert back.envelope == replace(msg.envelope, message_length=len(wire) - 20)
    expected_flags = int(msg.header.flags)
    if msg.header.response_code != 0:
        expected_flags = (expected_flags & ~int(OpFlag.RD)) | (
            int(OpFlag.RD) if msg.request_digest else 0
        )
    assert back.header == replace(
        msg.header, flags=OpFlag(expected_flags), body_length=back.header.body_length
    )
    assert encode_message(back) == wire
    assert back.header_body == wire[20 : 20 + 24 + back.header.body_length]
