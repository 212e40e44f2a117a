"""Issue 16: the pre-encoded public answer, sans I/O: a bulk load's layout encoder must give
the generic encoder's bytes, and only plain anonymous resolutions may be served from one."""

from __future__ import annotations

from dataclasses import replace

from idnode.codes import OpCode, OpFlag, Permission, TTLType
from idnode.model import HandleValue
from idnode.wire import bodies
from idnode.wire.credential import Credential
from idnode.wire.envelope import Envelope
from idnode.wire.header import Header
from idnode.wire.message import Message, encode_message
from idnode.wire.public_answer import encode_public_answer, layout_encoder, plain_datagram

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
