"""The raw-byte accessors read what the decoders read, field by field."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from idnode.client.resolve import resolution_request
from idnode.wire import peek
from idnode.wire.envelope import ENVELOPE_SIZE, decode_envelope
from idnode.wire.header import HEADER_SIZE, decode_header
from idnode.wire.message import encode_message

handles = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)


@given(handles, st.integers(0, 2**31 - 1), st.booleans())
def test_accessors_agree_with_the_decoders(suffix, request_id, certify):
    raw = encode_message(resolution_request(f"20.500.1/{suffix}", request_id=request_id,
                                            certify=certify))  # fmt: skip
    env = decode_envelope(raw[:ENVELOPE_SIZE])
    envelope, payload = peek.split(raw)
    header = decode_header(payload[:HEADER_SIZE])
    assert peek.request_id(raw) == env.request_id == request_id
    assert peek.message_length(raw) == env.message_length == len(payload)
    assert peek.is_truncated(raw) is env.truncated is False
    assert peek.is_single_plain_request(raw)
    assert peek.opcode(payload) == header.opcode and peek.is_resolution(payload)
    assert peek.op_flags(payload) == int(header.flags)
    assert HEADER_SIZE + peek.body_length(payload) + 4 == len(payload)  # + an empty credential
    assert not peek.has_credential(payload)  # the empty one is no credential
    assert peek.resolution_handle(payload) == f"20.500.1/{suffix}"
    assert envelope == raw[:ENVELOPE_SIZE]


def test_short_payloads_answer_without_raising():
    assert peek.opcode(b"\0\0") == -1
    assert peek.resolution_handle(b"\0" * HEADER_SIZE) == ""


def test_without_body_zeroes_only_the_body_length():
    header = bytes(range(HEADER_SIZE))
    cut = peek.without_body(header)
    assert cut[:20] == header[:20] and cut[20:24] == bytes(4) and len(cut) == HEADER_SIZE
