"""Unknown opcodes and malformed messages: the server answers with an error and stays up.

Every request here is built byte by byte; none could come from a well-behaved client. A
check passes when the answer is an error carrying our request id (or, where the RFC allows
silence, nothing) and when a good request right after it is still answered.
"""

from __future__ import annotations

import struct

from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.verify.conformance.catalogue import SHOULD, check
from idnode.verify.conformance.context import CheckFailed, Context
from idnode.verify.conformance.describe import hexdump
from idnode.verify.conformance.probes import Garbage, NoAnswer, Reply
from idnode.wire import bodies
from idnode.wire.envelope import Envelope, encode_envelope
from idnode.wire.header import Header, encode_header
from idnode.wire.message import encode_message

REF = "RFC 3652 §2.2.2.2"
ERRORS = (
    ResponseCode.PROTOCOL_ERROR,
    ResponseCode.OPERATION_NOT_SUPPORTED,
    ResponseCode.ERROR,
    ResponseCode.INVALID_HANDLE,
)


def frame(payload: bytes, request_id: int, **env: object) -> bytes:
    """An envelope announcing exactly ``payload`` (so only the payload is wrong)."""
    e = Envelope(request_id=request_id, message_length=len(payload), **env)  # type: ignore[arg-type]
    return encode_envelope(e) + payload


def raw_request(
    opcode: int, body: bytes, *, body_length: int | None = None, code: int = 0, flags: int = 0
) -> bytes:
    """Header + body + empty credential section, with a BodyLength that may lie."""
    header = Header(
        opcode=opcode,
        response_code=code,
        flags=OpFlag(flags),
        body_length=len(body) if body_length is None else body_length,
    )
    return encode_header(header) + body + b"\0\0\0\0"


def _utf8(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">I", len(data)) + data


async def _error_answer(ctx: Context, data: bytes, rid: int, note: str) -> Reply:
    reply = await ctx.probe.udp_send([data], note)
    ctx.expect(
        reply.envelope.request_id == rid,
        f"an error echoing request id {rid}",
        f"request id {reply.envelope.request_id}",
    )
    msg = reply.decoded()
    code = msg.header.response_code
    ctx.expect(
        code not in (0, ResponseCode.SUCCESS),
        "an error response code",
        f"response code {int(code)}",
    )
    return reply


async def _still_up(ctx: Context) -> None:
    try:
        reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle))
    except NoAnswer:
        raise CheckFailed(
            "the server still answering a good request afterwards",
            "no answer: the server stopped responding",
        ) from None
    ctx.expect_code(reply, ResponseCode.SUCCESS, "a good request after the bad ones")


@check("ERR-001", "An unknown opcode gets OPERATION_NOT_SUPPORTED", REF, category="errors")
async def unknown_opcode(ctx: Context) -> None:
    data = frame(raw_request(777, _utf8(ctx.read_handle)), 0x777)
    reply = await _error_answer(ctx, data, 0x777, "opcode 777 with a handle body")
    ctx.expect_code(reply, ResponseCode.OPERATION_NOT_SUPPORTED)


@check(
    "ERR-002", "An unknown opcode over TCP gets an error", REF, category="errors", needs=("tcp",)
)
async def unknown_opcode_tcp(ctx: Context) -> None:
    data = frame(raw_request(778, _utf8(ctx.read_handle)), 0x778)
    reply = (await ctx.probe.tcp_send(data, "opcode 778 over TCP"))[0]
    ctx.expect_code(reply, (ResponseCode.OPERATION_NOT_SUPPORTED, ResponseCode.PROTOCOL_ERROR))


@check("ERR-003", "A header cut short gets PROTOCOL_ERROR", REF, category="errors")
async def short_header(ctx: Context) -> None:
    data = frame(raw_request(OpCode.RESOLUTION, b"")[:10], 0x3003)
    await _error_answer(ctx, data, 0x3003, "a 10-byte header")


@check("ERR-004", "A BodyLength beyond the message gets PROTOCOL_ERROR", REF, category="errors")
async def body_length_lie(ctx: Context) -> None:
    data = frame(raw_request(OpCode.RESOLUTION, _utf8(ctx.read_handle), body_length=4000), 0x3004)
    await _error_answer(ctx, data, 0x3004, "BodyLength 4000 in a short message")


@check(
    "ERR-005", "A string length running past the body gets PROTOCOL_ERROR", REF, category="errors"
)
async def string_length_lie(ctx: Context) -> None:
    body = b"\xff\xff\xff\x00" + b"20.500/x" + b"\0" * 8
    data = frame(raw_request(OpCode.RESOLUTION, body), 0x3005)
    reply = await _error_answer(ctx, data, 0x3005, "handle length 4294967040")
    ctx.expect_code(reply, ResponseCode.PROTOCOL_ERROR)


@check(
    "ERR-006",
    "A request in protocol version 5.0 is not served",
    "RFC 3652 §2.2.1.1",
    category="errors",
)
async def bad_version(ctx: Context) -> None:
    msg = ctx.resolution(ctx.read_handle, version=(5, 0), suggest=(0, 0), request_id=0x3006)
    data = encode_message(msg)
    try:
        reply = await ctx.probe.udp_send([data], "resolution in version 5.0", timeout=1.0)
    except NoAnswer:
        return  # silence is an acceptable refusal
    code = reply.decoded().header.response_code
    ctx.expect(code != ResponseCode.SUCCESS, "an error or no answer", f"code {int(code)}")


@check(
    "ERR-007",
    "A request with the encrypted flag and no session is not served",
    "RFC 3652 §2.2.1.3",
    category="errors",
)
async def encrypted_without_session(ctx: Context) -> None:
    msg = ctx.resolution(ctx.read_handle, request_id=0x3007)
    data = bytearray(encode_message(msg))
    data[2] |= 0x40
    try:
        reply = await ctx.probe.udp_send([bytes(data)], "resolution flagged encrypted", timeout=1.0)
    except NoAnswer:
        return
    code = reply.decoded().header.response_code
    ctx.expect(code != ResponseCode.SUCCESS, "an error or no answer", f"code {int(code)}")


@check(
    "ERR-008",
    "A message carrying a response code is not answered",
    REF,
    severity=SHOULD,
    source="robustness (two servers answering answers loop); no RFC states it",
    category="errors",
)
async def no_reflection(ctx: Context) -> None:
    """Answering answers lets two servers bounce an error between them forever."""
    data = frame(
        raw_request(OpCode.RESOLUTION, _utf8(ctx.read_handle), code=ResponseCode.HANDLE_NOT_FOUND),
        0x3008,
    )
    got = await ctx.probe.udp_silence(
        [data], "a RESOLUTION response (code 100) sent as a request", ctx.probe.timeout / 2
    )
    ctx.expect(not got, "silence", f"{len(got)} datagram(s): {hexdump(got[0]) if got else ''}")


@check(
    "ERR-009",
    "Error answers carry a readable UTF-8 message",
    "RFC 3652 §3.3",
    severity=SHOULD,
    source="RFC 3652 does not require a non-empty ErrorMessage; HSJ writes one",
    category="errors",
)
async def error_body(ctx: Context) -> None:
    prefix = ctx.prefix or ctx.read_handle.split("/", 1)[0]
    reply = await ctx.probe.udp(ctx.resolution(f"{prefix}/idnode-verify-missing-{ctx.run_id}"))
    msg = ctx.expect_code(reply, ResponseCode.HANDLE_NOT_FOUND)
    ctx.expect(
        isinstance(msg.body, bodies.ErrorResponse), "an ErrorResponse body", type(msg.body).__name__
    )
    text = msg.body.message  # type: ignore[union-attr]
    ctx.expect(text and "\ufffd" not in text, "a non-empty UTF-8 message", repr(text))


@check(
    "ERR-010",
    "The server stays up after a burst of malformed datagrams",
    "RFC 3652 §2.2",
    category="errors",
)
async def survives_burst(ctx: Context) -> None:
    junk = [
        b"\x02",
        b"\0" * 19,
        b"\xff" * 20,
        b"\x02\x01" + b"\xff" * 60,
        frame(b"\xff" * 40, 0x3010),
        frame(raw_request(1, b"\0\0\0\x05ab"), 0x3011),
        encode_envelope(Envelope(request_id=0x3012, message_length=900, truncated=True))
        + b"\0" * 30,
    ]
    await ctx.probe.udp_silence(junk * 3, f"{len(junk) * 3} malformed datagrams", 0.2)
    await _still_up(ctx)


@check(
    "ERR-011",
    "A TCP stream announcing an absurd length is closed, not waited on",
    "RFC 3652 §2.3.2",
    category="errors",
    needs=("tcp",),
)
async def tcp_absurd_length(ctx: Context) -> None:
    bad = encode_envelope(Envelope(request_id=0x3013, message_length=0xFFFFFFF0))
    async with ctx.probe.tcp_connection() as conn:
        await conn.send(bad + b"\0" * 64)
        leftover = await conn.closed_or_silent(ctx.probe.timeout)
    if leftover:
        try:
            from idnode.wire.message import decode_message_bytes

            code = decode_message_bytes(leftover).header.response_code
        except Exception:
            raise Garbage(f"unframed bytes after an absurd length: {hexdump(leftover)}") from None
        ctx.expect(
            code != ResponseCode.SUCCESS, "an error or a closed connection", f"code {int(code)}"
        )
    reply = await ctx.probe.tcp(ctx.resolution(ctx.read_handle))
    ctx.expect_code(reply, ResponseCode.SUCCESS, "a new connection still served")


@check(
    "ERR-012",
    "A truncated multi-datagram request is not answered as complete",
    "RFC 3652 §2.3.1",
    severity=SHOULD,
    category="errors",
)
async def missing_piece(ctx: Context) -> None:
    """Only the first of two pieces is sent: the server must wait (or refuse), not guess."""
    msg = ctx.resolution(ctx.read_handle, indexes=range(1, 201), request_id=0x3014)
    data = encode_message(msg)
    env = Envelope(
        request_id=0x3014,
        message_length=len(data) - 20,
        truncated=True,
        suggest_major=2,
        suggest_minor=11,
    )
    first = encode_envelope(env) + data[20 : 20 + 492]
    got = await ctx.probe.udp_silence(
        [first], "piece 0 of a 2-piece request", ctx.probe.timeout / 2
    )
    for d in got:
        from idnode.wire.framing import UdpReassembler

        try:
            frm = UdpReassembler().feed(d, ctx.clock.monotonic())
        except Exception:
            continue
        if frm is None:
            continue
        from idnode.wire.message import decode_message

        code = decode_message(*frm).header.response_code
        ctx.expect(
            code != ResponseCode.SUCCESS,
            "silence or an error",
            "a SUCCESS answer to half a request",
        )
    await _still_up(ctx)


@check("ERR-013", "An empty handle is refused with an error", "RFC 3651 §2.1", category="errors")
async def empty_handle(ctx: Context) -> None:
    reply = await ctx.probe.udp(
        ctx.request(OpCode.RESOLUTION, bodies.ResolutionRequest("", (), ()), OpFlag.PO)
    )
    code = reply.decoded().header.response_code
    ctx.expect(code not in (0, ResponseCode.SUCCESS), "an error code", f"code {int(code)}")
