"""Issue 16: the pre-encoded public answer, sans I/O: a bulk load's layout encoder must give
the generic encoder's bytes, and only plain anonymous resolutions may be served from one."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from idnode.codes import OpCode, OpFlag, Permission, TTLType
from idnode.model import HandleValue
from idnode.wire import bodies, peek
from idnode.wire.credential import Credential
from idnode.wire.envelope import (
    ENVELOPE_SIZE,
    FLAG_COMPRESSED,
    FLAG_ENCRYPTED,
    FLAG_TRUNCATED,
    Envelope,
)
from idnode.wire.header import HEADER_SIZE, Header
from idnode.wire.message import Message, encode_message
from idnode.wire.public_answer import (
    _reply_prefix,
    datagram_answer,
    datagram_query,
    encode_public_answer,
    layout_encoder,
    plain_datagram,
    plain_payload,
    resolution_answer,
)

SECRET = Permission.ADMIN_READ | Permission.ADMIN_WRITE
LAYOUT = (
    HandleValue(2, "URL", timestamp=5),
    HandleValue(1, "DESC", permissions=SECRET, timestamp=7),
    HandleValue(3, "EMAIL", ttl_type=TTLType.ABSOLUTE, ttl=1_800_000_000, timestamp=9),
    HandleValue(4, "HS_ADMIN", timestamp=1),
    HandleValue(5, "NOTE", permissions=Permission(0), timestamp=1),  # returned to nobody
)


def test_a_layouts_answers_are_the_generic_encoders() -> None:
    encode = layout_encoder(LAYOUT)
    for datas in [
        (b'https://x/"q"', b"secret", b"a@b.c", b"\x00\x01not an admin", b"n"),
        (b"", b"", b"", b"", b""),
        ("https://例え.jp".encode(), b"s", b"x", b"\xff" * 40, b"n"),
    ]:
        record = [replace(v, data=d) for v, d in zip(LAYOUT, datas, strict=True)]
        assert encode(datas) == encode_public_answer(record)
    answer = encode((b"u", b"s", b"e", b"a", b"n"))
    assert answer.restricted  # index 1: an authorised reader's
    assert b"secret" not in answer.wire and b'"index":1,' not in answer.json


def test_a_layouts_fast_json_is_the_generic_encoders() -> None:
    """The layout encoder spells untyped ASCII text itself and remembers each slot's data
    (bulk import's speed): every kind of data, seen once or again, past the memo's bound,
    still gives the generic encoder's bytes."""
    layout = (
        HandleValue(1, "PART_NUMBER", timestamp=3),  # untyped: string or base64 by the data
        HandleValue(2, "URL", timestamp=3),  # typed
        HandleValue(100, "HS_ADMIN", timestamp=3),
    )
    samples = [
        b"BP-0001", b"tab\there", b"lf\nand cr\r", b"del\x7f", b"nul\x00", b"esc\x1b[0m",
        b'quote " and \\ backslash', "兆瓦".encode(), b"\xff\xfe", b"", b"~ !",
    ]  # fmt: skip
    encode = layout_encoder(layout)
    rows = [(d, d, b"\x00\x0f" + bytes(12)) for d in samples]
    rows += [(f"S{i:05d}".encode(), b"https://x/", rows[0][2]) for i in range(5000)]
    for datas in rows + rows[:20]:  # the first rows again: answered from the memo
        record = [replace(v, data=d) for v, d in zip(layout, datas, strict=True)]
        assert encode(datas) == encode_public_answer(record), datas


def test_no_public_value_is_no_answer() -> None:
    secret = (HandleValue(1, "URL", permissions=SECRET),)
    assert layout_encoder(secret)((b"x",)) is None
    assert encode_public_answer([replace(secret[0], data=b"x")]) is None
    empty = encode_public_answer([])  # a handle without values: an empty list is its answer
    assert empty is not None and empty.wire == bytes(4) and empty.json == b"[]"


def request(flags: int = 0, session: int = 0, credential=None, **body) -> bytes:
    return encode_message(
        Message(
            Header(opcode=OpCode.RESOLUTION, flags=OpFlag(flags)),
            bodies.ResolutionRequest("20.500.1/x", **body),
            Envelope(request_id=9, session_id=session),
            credential,
        )
    )


def test_only_plain_anonymous_resolutions_qualify() -> None:
    assert plain_datagram(request()) == ("20.500.1/x", False)
    assert plain_datagram(request(flags=OpFlag.PO)) == ("20.500.1/x", True)
    for refused in [
        request(indexes=(1,)),
        request(types=("URL",)),
        request(auth=b""),  # the IDIS SDK's trailing field
        request(session=5),
        *(request(flags=f) for f in (OpFlag.CT, OpFlag.ENC, OpFlag.REC, OpFlag.AT, OpFlag.RD)),
        request(credential=Credential(signature=b"x")),
    ]:
        assert plain_datagram(refused) is None
    truncated = request()
    assert plain_datagram(truncated[:-3]) is None
    assert plain_datagram(b"\x05" + truncated[1:]) is None  # an unknown major version


def _frame_path(message: bytes) -> tuple[str, bool] | None:
    """The decision as the TCP frame path makes it, from the per-field readers."""
    not_plain = FLAG_COMPRESSED | FLAG_ENCRYPTED | FLAG_TRUNCATED
    if len(message) < ENVELOPE_SIZE + HEADER_SIZE + 12 or peek.envelope_flags(message) & not_plain:
        return None
    if not peek.is_single_plain_request(message) or _reply_prefix(message[:4]) is None:
        return None
    return plain_payload(message[ENVELOPE_SIZE:])


@st.composite
def requests_and_mutations(draw) -> bytes:
    flags = draw(st.sampled_from([0, OpFlag.PO, OpFlag.PO | OpFlag.CT, OpFlag.REC, OpFlag.AT]))
    handle = draw(st.sampled_from(["20.500.1/x", "20.500.1/" + "é" * 40, "0.NA/20.500.1"]))
    body = draw(st.sampled_from([{}, {"indexes": (1,)}, {"types": ("URL",)}]))
    message = bytearray(
        encode_message(
            Message(
                Header(opcode=OpCode.RESOLUTION, flags=OpFlag(flags)),
                bodies.ResolutionRequest(handle, **body),
                Envelope(
                    request_id=draw(st.integers(0, 2**31)),
                    major=draw(st.sampled_from([2, 3])),
                    minor=draw(st.sampled_from([0, 1, 10])),
                ),
            )
        )
    )
    for _ in range(draw(st.integers(0, 3))):  # bytes changed anywhere, or cut, or added
        at = draw(st.integers(0, len(message) - 1))
        message[at] = draw(st.integers(0, 255))
    cut = draw(st.sampled_from([None, -3, -4]))
    tail = draw(st.sampled_from([b"", bytes(4), b"\x00\x00\x00\x01"]))
    return bytes(message[:cut]) + tail


@settings(max_examples=400, deadline=None)
@given(requests_and_mutations(), st.integers(0, 0xFFFF), st.integers(0, 2**33))
def test_a_datagram_read_in_one_unpack_is_decided_and_answered_as_a_frame_is(
    message: bytes, site_serial: int, expiration: int
) -> None:
    """``datagram_query`` (the UDP store path's one unpack) accepts exactly what the frame
    path's readers accept, and ``datagram_answer`` gives ``resolution_answer``'s bytes."""
    query = datagram_query(message)
    assert (None if query is None else query[:2]) == _frame_path(message)
    if query is not None:
        answer = b"\x00\x00\x00\x01" + bytes(range(40))
        assert datagram_answer(
            message, query, answer, site_serial=site_serial, expiration=expiration
        ) == resolution_answer(
            message[:4],
            message[8:12],
            message[20:],
            answer,
            site_serial=site_serial,
            expiration=expiration,
        )
