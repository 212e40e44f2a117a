"""Hostile input: the decoders and framers may only ever raise MalformedMessage.

Never IndexError, struct.error, UnicodeDecodeError, ValueError, MemoryError, and never an
allocation driven by a length field.
"""

from __future__ import annotations

import random
import time
import tracemalloc
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idnode.codes import OpCode, OpFlag
from idnode.errors import MalformedMessage
from idnode.wire import bodies as b
from idnode.wire.credential import Credential
from idnode.wire.envelope import ENVELOPE_SIZE, Envelope, decode_envelope, encode_envelope
from idnode.wire.framing import TcpFramer, UdpReassembler, split_datagrams
from idnode.wire.header import Header
from idnode.wire.message import Message, decode_message, decode_message_bytes, encode_message
from tests.wire.msgwire_support import REQUEST, URL_VALUE, messages


def _corpus() -> list[bytes]:
    """Valid messages of many shapes, the seeds of the mutation fuzzer."""
    env = Envelope(request_id=5)
    digest = b.RequestDigest(3, bytes(range(32)))
    cred = Credential("HS_SIGNED", "SHA-256", bytes(64))
    msgs = [
        Message(
            Header(1, 1, OpFlag.RD),
            b.ResolutionResponse("20/a", (URL_VALUE,) * 3),
            env,
            cred,
            digest,
        ),
        Message(Header(100, 0), b.CreateHandleRequest("20/b", (URL_VALUE,)), env),
        Message(Header(103, 0), b.RemoveValueRequest("20/b", (1, 2, 3)), env),
        Message(Header(105, 1), b.ListHandlesResponse(("20/a", "20/b", "20/c")), env),
        Message(Header(1, 100), b.ErrorResponse("not found", (1, 2)), env),
        Message(Header(1, 302), b.ServiceReferralResponse("0.NA/20", (URL_VALUE,)), env),
        Message(Header(101, 402), b.ChallengeResponse(bytes(16), digest), env),
        Message(Header(200, 0), b.ChallengeAnswerRequest("HS_PUBKEY", "20/k", 300, bytes(64)), env),
        Message(
            Header(201, 0),
            b.VerifyResponseRequest(
                "20/k", 300, bytes(16), b.RequestDigest(0, bytes(16)), bytes(20)
            ),
            env,
        ),
        Message(Header(400, 0), b.SessionSetupRequest(3, 60, "20/i", 1, b"", "20/k", 2), env),
        Message(Header(400, 1), b.SessionSetupResponse(1, bytes(40)), env),
        Message(Header(2, 1), b.SiteInfoResponse(bytes(50)), env),
        Message(Header(2, 0), b.GetSiteInfoRequest("/"), env),
    ]
    return [REQUEST, *(encode_message(m) for m in msgs)]


CORPUS = _corpus()


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        if kind == 0 and buf:  # flip a bit
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif kind == 1:  # truncate
            del buf[rng.randrange(len(buf) + 1) :]
        elif kind == 2:  # insert junk
            i = rng.randrange(len(buf) + 1)
            buf[i:i] = rng.randbytes(rng.randint(1, 8))
        elif kind == 3 and len(buf) >= 4:  # overwrite a 4-byte field with an extreme value
            i = rng.randrange(len(buf) - 3)
            buf[i : i + 4] = rng.choice(
                [b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x01\x00\x00"]
            )
        elif kind == 4 and buf:  # random byte
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif kind == 5 and buf:  # drop a byte
            del buf[rng.randrange(len(buf))]
    return bytes(buf)


def _decode_everything(data: bytes) -> None:
    """Every decoder entry point on the same bytes; only MalformedMessage may escape."""
    for call in (
        lambda: decode_envelope(data),
        lambda: decode_message_bytes(data),
        lambda: decode_message(Envelope(), data[ENVELOPE_SIZE:]),
        lambda: decode_message(Envelope(), data),
    ):
        try:
            call()
        except MalformedMessage:
            pass


def test_random_bytes():
    rng = random.Random(1)
    for _ in range(3000):
        data = rng.randbytes(rng.randint(0, 120))
        _decode_everything(data)


def test_random_bodies_for_every_dispatch_route():
    rng = random.Random(2)
    routes = [(op, 0) for op in b.REQUEST_BODIES] + [(op, 1) for op in b.SUCCESS_BODIES]
    routes += [(1, 2), (1, 100), (1, 302), (1, 303), (1, 402), (101, 1), (1003, 0)]
    for _ in range(4000):
        opcode, code = rng.choice(routes)
        data = rng.randbytes(rng.randint(0, 40))
        try:
            b.decode_body(opcode, code, data)
        except MalformedMessage:
            pass


def test_mutated_valid_messages():
    rng = random.Random(3)
    decoded = 0
    for _ in range(20000):
        data = _mutate(rng, rng.choice(CORPUS))
        try:
            decode_message_bytes(data)
            decoded += 1
        except MalformedMessage:
            pass
    assert decoded > 0  # some mutations (e.g. in a value's data) stay valid


def test_every_truncation_of_every_corpus_message():
    for data in CORPUS:
        for cut in range(len(data)):
            with pytest.raises(MalformedMessage):
                decode_message_bytes(data[:cut])


def test_every_single_bit_flip_of_the_request():
    for i in range(len(REQUEST) * 8):
        buf = bytearray(REQUEST)
        buf[i // 8] ^= 1 << (i % 8)
        _decode_everything(bytes(buf))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(messages(), st.randoms(use_true_random=False))
def test_mutated_generated_messages(msg, rnd):
    data = encode_message(msg)
    for _ in range(5):
        _decode_everything(_mutate(rnd, data))


def test_framers_on_garbage():
    rng = random.Random(4)
    for _ in range(400):
        stream = b"".join(_mutate(rng, rng.choice(CORPUS)) for _ in range(3))
        framer = TcpFramer(max_message=4096)
        pos = 0
        try:
            while pos < len(stream):
                n = rng.randint(1, 64)
                for env, payload in framer.feed(stream[pos : pos + n]):
                    try:
                        decode_message(env, payload)
                    except MalformedMessage:
                        pass
                pos += n
        except MalformedMessage:
            pass

    reasm = UdpReassembler(max_message=4096, max_pending=8)
    for i in range(3000):
        src = rng.choice(CORPUS)
        dgrams = split_datagrams(decode_envelope(src), src[ENVELOPE_SIZE:], max_packet=512)
        big = split_datagrams(replace(decode_envelope(src), request_id=i), bytes(1200))
        dgram = _mutate(rng, rng.choice(dgrams + big))
        try:
            reasm.feed(dgram, i * 0.01, rng.randrange(4))
        except MalformedMessage:
            pass
    assert reasm.pending <= 8


# --------------------------------------------------------------------------- huge lengths

SMALL = 256 * 1024  # bytes of allocation any of these may cost, at most


def _cheap_failure(data: bytes, decode) -> None:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(MalformedMessage):
            decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 0.5
    assert peak < SMALL, peak


def _with_header(body: bytes, opcode: int = 1, code: int = 0, body_length: int | None = None):
    hdr = Header(opcode, code, body_length=len(body) if body_length is None else body_length)
    from idnode.wire.header import encode_header

    payload = encode_header(hdr) + body
    return encode_envelope(Envelope(message_length=len(payload))) + payload


@pytest.mark.parametrize(
    ("name", "data"),
    [
        (
            "envelope length",
            bytes.fromhex("0201020b 00000000 00000001 00000000 ffffffff") + bytes(10),
        ),
        ("header body length", _with_header(b"", body_length=0xFFFFFFFF)),
        ("handle length", _with_header(bytes.fromhex("fffffff0 41"))),
        ("index count", _with_header(bytes.fromhex("00000001 41 ffffffff"))),
        ("type count", _with_header(bytes.fromhex("00000001 41 00000000 7fffffff"))),
        ("value count", _with_header(bytes.fromhex("00000001 41 ffffffff"), code=1)),
        ("list count", _with_header(bytes.fromhex("ffffffff"), opcode=105, code=1)),
        (
            "old digest length",
            _with_header(bytes.fromhex("00000001 41 00000000 00000000 00fffff0"), 201),
        ),
        ("credential length", REQUEST[:-4] + bytes.fromhex("ffffffff")),
    ],
)
def test_huge_length_fields_fail_fast_without_allocating(name, data):
    _cheap_failure(data, decode_message_bytes)


def test_huge_length_in_framers_fails_fast():
    data = bytes.fromhex("0201020b 00000000 00000001 00000000 ffffffff") + b"0123456789"
    _cheap_failure(data, lambda d: TcpFramer().feed(d))
    _cheap_failure(data, lambda d: UdpReassembler().feed(d, 0.0))
    # within the limit but far beyond the datagram: a partial holds only what arrived
    env = Envelope(truncated=True, message_length=1 << 20)
    dgram = encode_envelope(env) + bytes(10)
    _cheap_failure(dgram, lambda d: UdpReassembler().feed(d, 0.0))


def test_many_tiny_values_claimed_but_absent():
    # 1 million values claimed with 12 bytes present: rejected by the count check
    body = bytes.fromhex("00000001 41 000f4240") + bytes(12)
    _cheap_failure(_with_header(body, code=1), decode_message_bytes)


def test_opcodes_are_kept_for_errors():
    # a request with an unknown opcode decodes (to RawBody) so the server can refuse it
    msg = decode_message_bytes(_with_header(b"abc", opcode=1003))
    assert msg.body == b.RawBody(b"abc") and msg.opcode == 1003
    assert not isinstance(msg.opcode, OpCode)
