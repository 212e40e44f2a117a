"""Envelope and header fields (RFC 3652 §2.2.1, §2.2.2), and recursion and expiration.

Each check sends one well-formed request and judges one field of the answer, so a failure
names exactly the field that was wrong.
"""

from __future__ import annotations

import struct

from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.verify.conformance.catalogue import SHOULD, check
from idnode.verify.conformance.context import Context
from idnode.verify.conformance.probes import NoAnswer, Unreachable, decode_envelope_safe
from idnode.wire import bodies
from idnode.wire.bodies import digest_request
from idnode.wire.envelope import ENVELOPE_SIZE
from idnode.wire.header import HEADER_SIZE, decode_header
from idnode.wire.message import encode_header_body, encode_message

ENV_REF = "RFC 3652 §2.2.1"
HDR_REF = "RFC 3652 §2.2.2"


@check("ENV-001", "Answers carry protocol major version 2", ENV_REF + ".1", category="envelope")
async def major_version(ctx: Context) -> None:
    reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle))
    env = reply.envelope
    ctx.expect(env.major == 2, "envelope major version 2", f"{env.major}.{env.minor}")


@check(
    "ENV-002",
    "Answer version does not exceed what the client speaks",
    ENV_REF + ".1",
    category="envelope",
)
async def version_not_above_client(ctx: Context) -> None:
    """A 2.1 client suggesting nothing higher must get a 2.x answer no newer than 2.1."""
    msg = ctx.resolution(ctx.read_handle, suggest=(0, 0))
    reply = await ctx.probe.udp(msg)
    got = (reply.envelope.major, reply.envelope.minor)
    ctx.expect(
        got[0] == 2 and got <= (2, 1), "answer in version 2.0 or 2.1", f"version {got[0]}.{got[1]}"
    )


@check("ENV-003", "Request id is echoed over UDP", ENV_REF + ".5", category="envelope")
async def request_id_udp(ctx: Context) -> None:
    msg = ctx.resolution(ctx.read_handle, request_id=0x1234ABCD)
    reply = await ctx.probe.udp(msg)
    got = reply.envelope.request_id
    ctx.expect(got == 0x1234ABCD, "request id 305441741 echoed", f"request id {got}")


@check(
    "ENV-004", "Request id is echoed over TCP", ENV_REF + ".5", category="envelope", needs=("tcp",)
)
async def request_id_tcp(ctx: Context) -> None:
    msg = ctx.resolution(ctx.read_handle, request_id=0x0BADF00D)
    reply = await ctx.probe.tcp(msg)
    got = reply.envelope.request_id
    ctx.expect(got == 0x0BADF00D, "request id 195948557 echoed", f"request id {got}")


@check(
    "ENV-005",
    "Message length matches the bytes that follow the envelope",
    ENV_REF + ".7",
    category="envelope",
)
async def message_length(ctx: Context) -> None:
    reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle))
    datagram = reply.raw[0]
    announced = reply.envelope.message_length
    if len(reply.raw) == 1:
        ctx.expect(
            announced == len(datagram) - ENVELOPE_SIZE,
            f"message length {len(datagram) - ENVELOPE_SIZE} (datagram minus envelope)",
            f"message length {announced}",
        )
    ctx.expect(
        len(reply.payload) == announced, f"{announced} payload bytes", f"{len(reply.payload)}"
    )


@check(
    "ENV-006",
    "Header body length is consistent with the message length",
    HDR_REF,
    category="envelope",
)
async def body_length(ctx: Context) -> None:
    """Message = 24-byte header + BodyLength + 4-byte credential length + credential."""
    reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle))
    payload = reply.payload
    ctx.expect(
        len(payload) >= HEADER_SIZE + 4,
        "at least a header and a credential length",
        f"{len(payload)} bytes",
    )
    header = decode_header(payload)
    rest = len(payload) - HEADER_SIZE - header.body_length
    ctx.expect(
        rest >= 4,
        "BodyLength leaving room for the 4-byte credential length",
        f"BodyLength {header.body_length} in a {len(payload)}-byte message",
    )
    (cred_len,) = struct.unpack_from(">I", payload, HEADER_SIZE + header.body_length)
    ctx.expect(
        rest == 4 + cred_len,
        f"{4 + cred_len} bytes after the body",
        f"{rest} bytes (BodyLength {header.body_length}, credential length {cred_len})",
    )


@check(
    "ENV-007",
    "Answers to plain requests are neither compressed nor encrypted",
    ENV_REF + ".3",
    category="envelope",
)
async def no_unasked_flags(ctx: Context) -> None:
    reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle))
    env = reply.envelope
    ctx.expect(
        not env.compressed and not env.encrypted,
        "compressed and encrypted flags clear",
        f"compressed={env.compressed} encrypted={env.encrypted}",
    )


@check("ENV-008", "Session id 0 is answered with session id 0", ENV_REF + ".4", category="envelope")
async def session_id_zero(ctx: Context) -> None:
    reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle))
    got = reply.envelope.session_id
    ctx.expect(got == 0, "session id 0 (no session was set up)", f"session id {got}")


@check(
    "ENV-009", "A single-datagram answer has sequence number 0", ENV_REF + ".6", category="envelope"
)
async def sequence_zero(ctx: Context) -> None:
    reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle))
    env = decode_envelope_safe(reply.raw[0])
    seq = env.sequence if env else -1
    ctx.expect(seq == 0, "sequence number 0 in the first datagram", f"sequence number {seq}")


@check(
    "ENV-010",
    "A request split over several datagrams is reassembled and answered",
    ENV_REF + ".6",
    category="envelope",
)
async def multi_datagram_request(ctx: Context) -> None:
    """A resolution asking for 200 indexes is 800+ bytes: two 492-byte pieces (HSJ framing)."""
    msg = ctx.resolution(ctx.read_handle, indexes=range(1, 201))
    reply = await ctx.probe.udp(msg)
    answer = ctx.expect_code(reply, (ResponseCode.SUCCESS, ResponseCode.VALUES_NOT_FOUND))
    ctx.expect(
        reply.envelope.request_id == msg.envelope.request_id,
        f"request id {msg.envelope.request_id}",
        f"{reply.envelope.request_id}",
    )
    ctx.expect(answer.header.opcode == OpCode.RESOLUTION, "opcode 1", str(answer.header.opcode))


@check(
    "ENV-011",
    "The TCP answer is framed by its message length",
    ENV_REF + ".7",
    category="envelope",
    needs=("tcp",),
)
async def tcp_framing(ctx: Context) -> None:
    """Each answer is exactly as long as its envelope announces.

    RFC 3652 asks no server to keep a connection open or to read pipelined requests:
    HANDLE.NET answers one request and closes. So two requests go out back to back; the
    first must be answered in a whole frame, the second either answered in order in a whole
    frame or not at all (the connection closed after the first answer)."""
    first, second = ctx.resolution(ctx.read_handle), ctx.resolution(ctx.read_handle)
    async with ctx.probe.tcp_connection() as conn:
        (reply,) = await conn.exchange(
            encode_message(first) + encode_message(second), "two resolutions back to back"
        )
        replies = [reply]
        try:  # a second answer only from a server that keeps the connection
            replies += await conn.more("the second answer, if the connection stays open")
        except (NoAnswer, Unreachable):
            pass
    want = [first.envelope.request_id, second.envelope.request_id][: len(replies)]
    ids = [r.envelope.request_id for r in replies]
    ctx.expect(ids == want, f"request ids {want}", f"{ids}")
    for r in replies:
        r.decoded()


@check("HDR-001", "The answer repeats the request's opcode", HDR_REF + ".1", category="envelope")
async def opcode_echo(ctx: Context) -> None:
    reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle))
    header = decode_header(reply.payload)
    ctx.expect(
        header.opcode == OpCode.RESOLUTION, "opcode 1 (RESOLUTION)", f"opcode {int(header.opcode)}"
    )


@check("HDR-002", "Answers carry a non-zero response code", HDR_REF + ".2", category="envelope")
async def nonzero_code(ctx: Context) -> None:
    reply = await ctx.probe.udp(ctx.request(OpCode.GET_SITEINFO, bodies.GetSiteInfoRequest()))
    header = decode_header(reply.payload)
    ctx.expect(
        header.response_code != 0,
        "a response code other than 0 (0 marks requests)",
        "response code 0",
    )


@check(
    "HDR-003",
    "The public-only flag is echoed in the answer",
    HDR_REF + ".3",
    severity=SHOULD,
    category="envelope",
)
async def po_echo(ctx: Context) -> None:
    reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle, flags=OpFlag.PO))
    header = decode_header(reply.payload)
    ctx.expect(
        header.flags & OpFlag.PO,
        "PO flag set in the answer (HSJ echoes request flags)",
        f"flags {int(header.flags):#010x}",
    )


@check(
    "HDR-004",
    "With RD set, the answer carries the digest of the request",
    HDR_REF + ".3",
    category="envelope",
)
async def request_digest(ctx: Context) -> None:
    msg = ctx.resolution(ctx.read_handle, flags=OpFlag.PO | OpFlag.RD)
    reply = await ctx.probe.udp(msg)
    answer = reply.decoded()
    ctx.expect(answer.header.flags & OpFlag.RD, "RD flag in the answer", "RD flag clear")
    digest = answer.request_digest
    ctx.expect(digest is not None, "a request digest before the body", "none")
    assert digest is not None
    want = digest_request(encode_header_body(msg), digest.algorithm)
    ctx.expect(
        digest.digest == want.digest,
        f"digest (algorithm {digest.algorithm}) {want.digest.hex()}",
        digest.digest.hex(),
    )


@check(
    "HDR-005",
    "Answers carry the site serial of the server's HS_SITE",
    HDR_REF + ".4",
    severity=SHOULD,
    category="envelope",
)
async def site_serial(ctx: Context) -> None:
    from idnode.wire.site import decode_site

    info = ctx.expect_code(
        await ctx.probe.udp(ctx.request(OpCode.GET_SITEINFO, bodies.GetSiteInfoRequest())),
        ResponseCode.SUCCESS,
    )
    site = decode_site(info.body.site)  # type: ignore[union-attr]
    reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle))
    got = reply.decoded().header.site_serial
    ctx.expect(got == site.serial, f"SiteInfoSerial {site.serial}", f"{got}")


@check(
    "REC-001",
    "Expiration time lies in the future, within a year",
    HDR_REF + ".6",
    category="recursion",
)
async def expiration(ctx: Context) -> None:
    """On every answer, not only on values: HSJ's resolver refuses any message whose
    expiration has passed (0 included: ``GOT_EXPIRED_MESSAGE``) and moves on to another
    interface, so a server that stamps 0 on errors, challenges or session refusals breaks
    every HSJ client on them."""
    prefix = ctx.prefix or ctx.read_handle.split("/", 1)[0]
    asks = [
        ("a resolution", ctx.resolution(ctx.read_handle), False),
        (
            "an unknown handle (an error)",
            ctx.resolution(f"{prefix}/idnode-verify-missing-{ctx.run_id}"),
            False,
        ),
        (
            "a request naming an unknown session (a session refusal)",
            ctx.resolution(ctx.read_handle, session_id=0x5EED0001),
            False,
        ),
    ]
    if ctx.probe.tcp_addr is not None:
        create = bodies.CreateHandleRequest(f"{prefix}/idnode-verify-rec-{ctx.run_id}")
        asks.append(
            (
                "an unauthenticated create (a challenge)",
                ctx.request(OpCode.CREATE_HANDLE, create),
                True,
            )
        )
    now = int(ctx.clock())
    for what, msg, tcp in asks:
        reply = await (ctx.probe.tcp(msg) if tcp else ctx.probe.udp(msg))
        header = reply.decoded().header
        ctx.expect(
            now - 60 < header.expiration <= now + 366 * 86400,
            f"on {what}: an expiration between now ({now}) and a year ahead",
            f"{header.expiration} (code {int(header.response_code)})",
        )


@check(
    "REC-002",
    "The recursion count is returned unchanged",
    HDR_REF + ".5",
    severity=SHOULD,
    category="recursion",
)
async def recursion_echo(ctx: Context) -> None:
    reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle, recursion=3))
    got = reply.decoded().header.recursion_count
    ctx.expect(got == 3, "recursion count 3 (as sent)", f"{got}")


@check(
    "REC-003",
    "A recursive request for a homed handle is answered directly",
    HDR_REF + ".3",
    category="recursion",
)
async def recursive_flag(ctx: Context) -> None:
    """REC asks a caching server to resolve on the client's behalf; an authoritative server
    answers from its own data."""
    reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle, flags=OpFlag.PO | OpFlag.REC))
    ctx.expect_code(reply, ResponseCode.SUCCESS)


@check(
    "REC-004",
    "Value TTLs are well-formed (type 0 or 1, timestamps not in the future)",
    "RFC 3651 §3.1",
    category="recursion",
)
async def value_ttl(ctx: Context) -> None:
    reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle))
    msg = ctx.expect_code(reply, ResponseCode.SUCCESS)
    now = ctx.clock()
    for v in msg.body.values:  # type: ignore[union-attr]
        ctx.expect(
            int(v.ttl_type) in (0, 1), f"TTL type 0 or 1 for value {v.index}", f"{int(v.ttl_type)}"
        )
        ctx.expect(
            v.timestamp <= now + 86400,
            f"timestamp of value {v.index} not in the future",
            f"{v.timestamp}",
        )
