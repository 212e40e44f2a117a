"""Multi-datagram UDP messages (HSJ: 492-byte pieces) and TCP stream framing."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idnode.errors import MalformedMessage
from idnode.wire.envelope import Envelope, decode_envelope, encode_envelope
from idnode.wire.framing import UDP_CHUNK, TcpFramer, UdpReassembler, split_datagrams
from idnode.wire.message import decode_message, encode_message
from tests.wire.msgwire_support import REQUEST

ENV = Envelope(major=2, minor=10, request_id=0x42, session_id=7)
PAYLOAD = bytes(i % 251 for i in range(1000))


# --------------------------------------------------------------------------- UDP split


def test_single_datagram():
    (dgram,) = split_datagrams(ENV, b"abc")
    env = decode_envelope(dgram)
    assert dgram[20:] == b"abc"
    assert (env.sequence, env.message_length, env.truncated) == (0, 3, False)


def test_split_1000_bytes_into_492_byte_pieces():
    assert UDP_CHUNK == 492
    dgrams = split_datagrams(ENV, PAYLOAD)
    assert [len(d) for d in dgrams] == [512, 512, 20 + 16]
    for seq, d in enumerate(dgrams):
        # every envelope: same ids, TOTAL length, its own sequence number, truncated set
        assert d[:20] == bytes.fromhex(f"020a220b 00000007 00000042 {seq:08x} 000003e8"), seq
        assert d[20:] == PAYLOAD[seq * 492 : (seq + 1) * 492]


def test_split_exact_multiple_and_empty():
    assert [len(d) for d in split_datagrams(ENV, bytes(984))] == [512, 512]
    assert [len(d) for d in split_datagrams(ENV, b"")] == [20]
    assert [len(d) for d in split_datagrams(ENV, bytes(100), max_packet=60)] == [60, 60, 40]
    with pytest.raises(ValueError):
        split_datagrams(ENV, b"x", max_packet=20)


# --------------------------------------------------------------------------- UDP reassembly


def test_single_datagram_passes_through():
    r = UdpReassembler()
    (dgram,) = split_datagrams(ENV, REQUEST[20:])
    env, payload = r.feed(dgram, 0.0, "peer")
    assert payload == REQUEST[20:] and env.request_id == 0x42
    assert decode_message(env, payload).body.handle == "0.NA/20.500"
    assert r.pending == 0


def test_single_datagram_trailing_bytes_ignored_short_rejected():
    r = UdpReassembler()
    (dgram,) = split_datagrams(ENV, b"abc")
    assert r.feed(dgram + b"zz", 0.0)[1] == b"abc"
    with pytest.raises(MalformedMessage, match="carries 2 of 3"):
        r.feed(dgram[:-1], 0.0)


def test_reassemble_out_of_order():
    r = UdpReassembler()
    d0, d1, d2 = split_datagrams(ENV, PAYLOAD)
    assert r.feed(d2, 0.0, "a") is None
    assert r.feed(d0, 0.1, "a") is None
    assert r.pending == 1 and r.pending_bytes == 492 + 16
    env, payload = r.feed(d1, 0.2, "a")
    assert payload == PAYLOAD
    assert env.sequence == 0 and env.request_id == 0x42 and env.message_length == 1000
    assert r.pending == 0 and r.pending_bytes == 0


def test_hsj_server_response_without_truncated_flag():
    # HSJ servers reuse the request envelope, so multi-packet responses may lack the flag
    dgrams = [
        encode_envelope(replace(decode_envelope(d), truncated=False)) + d[20:]
        for d in split_datagrams(ENV, PAYLOAD)
    ]
    r = UdpReassembler()
    assert r.feed(dgrams[0], 0.0) is None
    assert r.feed(dgrams[1], 0.0) is None
    assert r.feed(dgrams[2], 0.0)[1] == PAYLOAD


def test_peers_and_request_ids_are_separate():
    r = UdpReassembler()
    a = split_datagrams(ENV, PAYLOAD)
    other = split_datagrams(replace(ENV, request_id=0x43), PAYLOAD[::-1])
    r.feed(a[0], 0, "p1")
    r.feed(a[0], 0, "p2")
    r.feed(other[0], 0, "p1")
    assert r.pending == 3
    r.feed(a[1], 0, "p1")
    assert r.feed(a[2], 0, "p1")[1] == PAYLOAD
    r.feed(other[1], 0, "p1")
    assert r.feed(other[2], 0, "p1")[1] == PAYLOAD[::-1]
    assert r.pending == 1


def test_duplicate_piece():
    r = UdpReassembler()
    d0, _, _ = split_datagrams(ENV, PAYLOAD)
    r.feed(d0, 0.0)
    with pytest.raises(MalformedMessage, match="duplicate"):
        r.feed(d0, 0.0)


def test_sequence_out_of_range():
    r = UdpReassembler()
    d0 = split_datagrams(ENV, PAYLOAD)[0]
    bad = encode_envelope(replace(decode_envelope(d0), sequence=3)) + d0[20:]
    with pytest.raises(MalformedMessage, match="sequence 3 beyond the 3 pieces"):
        r.feed(bad, 0.0)
    single = (
        encode_envelope(replace(decode_envelope(d0), sequence=1, truncated=False, message_length=3))
        + b"abc"
    )
    with pytest.raises(MalformedMessage, match="sequence"):
        r.feed(single, 0.0)


def test_wrong_piece_size():
    r = UdpReassembler()
    d0, d1, d2 = split_datagrams(ENV, PAYLOAD)
    with pytest.raises(MalformedMessage, match="expected 492"):
        r.feed(d0[:-1], 0.0)
    with pytest.raises(MalformedMessage, match="expected 16"):
        r.feed(d2 + b"x", 0.0)


def test_pieces_disagreeing_on_length():
    r = UdpReassembler()
    d0 = split_datagrams(ENV, PAYLOAD)[0]
    other = split_datagrams(ENV, PAYLOAD + bytes(100))[1]
    r.feed(d0, 0.0)
    with pytest.raises(MalformedMessage, match="disagree"):
        r.feed(other, 0.0)
    assert r.pending == 0


def test_stale_partials_expire():
    r = UdpReassembler(timeout=5.0)
    d0, d1, d2 = split_datagrams(ENV, PAYLOAD)
    r.feed(d0, 100.0)
    r.feed(d1, 104.9)
    assert r.pending == 1
    assert r.feed(d2, 105.0) is None  # too late: the partial expired, d2 starts a new one
    assert r.pending == 1
    assert r.expire(111.0) == 1 and r.pending == 0


def test_max_pending_drops_oldest():
    r = UdpReassembler(max_pending=2)
    pieces = [split_datagrams(replace(ENV, request_id=i), PAYLOAD) for i in range(3)]
    for i in range(3):
        r.feed(pieces[i][0], float(i))
    assert r.pending == 2
    r.feed(pieces[0][1], 3.0)  # request 0 was dropped: its piece 1 starts afresh
    assert r.pending == 2
    r.feed(pieces[2][1], 3.0)
    assert r.feed(pieces[2][2], 3.0)[1] == PAYLOAD


def test_max_pending_bytes():
    r = UdpReassembler(max_pending_bytes=1000)
    a = split_datagrams(ENV, PAYLOAD)
    b = split_datagrams(replace(ENV, request_id=9), PAYLOAD)
    r.feed(a[0], 0.0)
    r.feed(a[1], 0.0)
    r.feed(b[0], 0.0)  # 3 * 492 > 1000: the oldest partial goes
    assert r.pending == 1 and r.pending_bytes == 492


def test_message_length_limit_applies_per_piece():
    r = UdpReassembler(max_message=999)
    with pytest.raises(MalformedMessage, match="exceeds"):
        r.feed(split_datagrams(ENV, PAYLOAD)[0], 0.0)


@settings(max_examples=60)
@given(st.binary(max_size=3000), st.randoms(use_true_random=False))
def test_split_then_reassemble_any_order(payload, rnd):
    dgrams = split_datagrams(ENV, payload)
    rnd.shuffle(dgrams)
    r = UdpReassembler()
    results = [r.feed(d, 0.0, "peer") for d in dgrams]
    assert all(x is None for x in results[:-1])
    assert results[-1][1] == payload
    assert r.pending == 0


# --------------------------------------------------------------------------- TCP


def test_tcp_byte_at_a_time():
    f = TcpFramer()
    out = []
    for i in range(len(REQUEST)):
        out += f.feed(REQUEST[i : i + 1])
    assert len(out) == 1
    env, payload = out[0]
    assert env.request_id == 0x1234 and payload == REQUEST[20:]
    assert f.buffered == 0


def test_tcp_several_messages_in_one_chunk_and_split_across():
    f = TcpFramer()
    stream = REQUEST * 3
    assert len(REQUEST) == 82
    assert len(f.feed(stream[:100])) == 1
    assert f.buffered == 100 - 82
    got = f.feed(stream[100:200])
    assert len(got) == 1 and f.buffered == 200 - 2 * 82
    got = f.feed(stream[200:])
    assert [p for _, p in got] == [REQUEST[20:]]
    assert f.buffered == 0
    assert f.feed(b"") == []


def test_tcp_empty_payload_message():
    f = TcpFramer()
    out = f.feed(encode_envelope(Envelope(message_length=0)) * 2)
    assert [p for _, p in out] == [b"", b""]


def test_tcp_absurd_length_raises_before_allocation():
    f = TcpFramer(max_message=1 << 20)
    with pytest.raises(MalformedMessage, match="exceeds"):
        f.feed(bytes.fromhex("0201020b 00000000 00000001 00000000 ffffffff") + b"0123456789")
    with pytest.raises(MalformedMessage):  # the stream stays unusable
        f.feed(REQUEST)
    assert f.buffered == 0


@settings(max_examples=60)
@given(st.lists(st.binary(max_size=600), max_size=5), st.randoms(use_true_random=False))
def test_tcp_arbitrary_chunking(payloads, rnd):
    stream = b"".join(
        encode_envelope(Envelope(request_id=i, message_length=len(p))) + p
        for i, p in enumerate(payloads)
    )
    f = TcpFramer()
    out = []
    pos = 0
    while pos < len(stream):
        n = rnd.randint(1, 200)
        out += f.feed(stream[pos : pos + n])
        pos += n
    assert [p for _, p in out] == payloads
    assert [e.request_id for e, _ in out] == list(range(len(payloads)))


def test_encode_message_stream_round_trip():
    msgs = [encode_message(decode_message(decode_envelope(REQUEST), REQUEST[20:]))] * 2
    f = TcpFramer()
    rng = random.Random(3)
    data = b"".join(msgs)
    cut = rng.randint(1, len(data) - 1)
    out = f.feed(data[:cut]) + f.feed(data[cut:])
    assert [decode_message(e, p).body.handle for e, p in out] == ["0.NA/20.500"] * 2
