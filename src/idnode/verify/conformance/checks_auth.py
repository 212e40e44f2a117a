"""Authentication flows (RFC 3652 §3.5): challenge, answer, wrong answer, replay.

The request that needs authority is a resolution without PO of the fixture's restricted
value: every Handle server must challenge it, and a correct answer must reveal the value,
so "the answer worked" is judged by data, not by a code alone.
"""

from __future__ import annotations

from dataclasses import replace

from idnode.auth import session_suites as suites
from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.crypto import session_crypto as sc
from idnode.verify.conformance.catalogue import SHOULD, check
from idnode.verify.conformance.context import CheckFailed, Context, Credentials
from idnode.verify.conformance.describe import describe
from idnode.verify.conformance.fixtures import RESTRICTED_INDEX
from idnode.verify.conformance.probes import Reply, TcpConnection
from idnode.wire import bodies
from idnode.wire.bodies import digest_request
from idnode.wire.message import Message, encode_header_body, encode_message

REF = "RFC 3652 §3.5"
NEEDS = ("tcp", "admin")
FAILURES = (
    ResponseCode.AUTHENTICATION_FAILED,
    ResponseCode.INVALID_CREDENTIAL,
    ResponseCode.AUTHEN_TIMEOUT,
    ResponseCode.UNABLE_TO_AUTHENTICATE,
    ResponseCode.ACCESS_DENIED,
    ResponseCode.NOT_AUTHORIZED,
)


def _restricted_request(ctx: Context) -> Message:
    fx = ctx.need_fixtures()
    return ctx.resolution(fx.record, indexes=[RESTRICTED_INDEX], flags=OpFlag(0))


async def _send(conn: TcpConnection, msg: Message) -> Reply:
    return (await conn.exchange(encode_message(msg), describe(msg)))[0]


async def _challenge(ctx: Context, conn: TcpConnection) -> tuple[Message, Message]:
    req = _restricted_request(ctx)
    reply = await _send(conn, req)
    challenge = ctx.expect_code(
        reply, ResponseCode.AUTHENTICATION_NEEDED, "a challenge for a restricted value"
    )
    ctx.expect(
        isinstance(challenge.body, bodies.ChallengeResponse),
        "a challenge body",
        type(challenge.body).__name__,
    )
    return req, challenge


def _answer(
    ctx: Context, req: Message, challenge: Message, creds: Credentials | None = None
) -> Message:
    return ctx.signer(creds or ctx.need_creds()).answer_for(req, challenge)


def _leaks(ctx: Context, msg: Message) -> bool:
    fx = ctx.need_fixtures()
    return any(v.data == fx.restricted_data for v in getattr(msg.body, "values", ()))


async def _refused(ctx: Context, conn: TcpConnection, answer: Message, codes=FAILURES) -> None:
    reply = await _send(conn, answer)
    msg = reply.decoded()
    ctx.expect(not _leaks(ctx, msg), "the restricted value withheld", describe(msg))
    ctx.expect_code(reply, codes)


@check(
    "AUTH-001",
    "A request needing authority is answered with a challenge",
    REF,
    category="auth",
    needs=NEEDS,
)
async def challenge_issued(ctx: Context) -> None:
    async with ctx.probe.tcp_connection() as conn:
        _, challenge = await _challenge(ctx, conn)
    nonce = challenge.body.nonce  # type: ignore[union-attr]
    ctx.expect(len(nonce) >= 8, "a nonce of at least 8 bytes", f"{len(nonce)} bytes")


@check(
    "AUTH-002",
    "The challenge carries the digest of the challenged request",
    REF,
    category="auth",
    needs=NEEDS,
)
async def challenge_digest(ctx: Context) -> None:
    async with ctx.probe.tcp_connection() as conn:
        req, challenge = await _challenge(ctx, conn)
    got = challenge.body.digest  # type: ignore[union-attr]
    want = digest_request(encode_header_body(req), got.algorithm)
    ctx.expect(got.digest == want.digest, f"digest {want.digest.hex()}", got.digest.hex())


@check("AUTH-003", "Every challenge has a fresh nonce", REF, category="auth", needs=NEEDS)
async def fresh_nonce(ctx: Context) -> None:
    async with ctx.probe.tcp_connection() as conn:
        _, one = await _challenge(ctx, conn)
        _, two = await _challenge(ctx, conn)
    a, b = one.body.nonce, two.body.nonce  # type: ignore[union-attr]
    ctx.expect(a != b, "two different nonces", f"the same nonce twice ({a.hex()})")


@check(
    "AUTH-004",
    "A correct answer gets the original request served",
    REF,
    category="auth",
    needs=NEEDS,
)
async def correct_answer(ctx: Context) -> None:
    async with ctx.probe.tcp_connection() as conn:
        req, challenge = await _challenge(ctx, conn)
        reply = await _send(conn, _answer(ctx, req, challenge))
    msg = ctx.expect_code(reply, ResponseCode.SUCCESS, "authenticated as --admin")
    ctx.expect(
        msg.header.opcode == req.header.opcode,
        "the original opcode (1)",
        f"{int(msg.header.opcode)}",
    )
    ctx.expect(_leaks(ctx, msg), f"restricted value {RESTRICTED_INDEX} to its admin", describe(msg))


@check(
    "AUTH-005",
    "The answer to a challenge answer carries the answer's request id",
    REF,
    severity=SHOULD,
    category="auth",
    needs=NEEDS,
)
async def answer_request_id(ctx: Context) -> None:
    async with ctx.probe.tcp_connection() as conn:
        req, challenge = await _challenge(ctx, conn)
        answer = _answer(ctx, req, challenge)
        answer.envelope = replace(answer.envelope, request_id=0x5005)
        reply = await _send(conn, answer)
    ctx.expect(
        reply.envelope.request_id == 0x5005, "request id 20485", f"{reply.envelope.request_id}"
    )


@check("AUTH-006", "A wrong signature is refused", REF, category="auth", needs=NEEDS)
async def wrong_answer(ctx: Context) -> None:
    async with ctx.probe.tcp_connection() as conn:
        req, challenge = await _challenge(ctx, conn)
        answer = _answer(ctx, req, challenge)
        body = answer.body
        assert isinstance(body, bodies.ChallengeAnswerRequest)
        bad = body.signature[:-1] + bytes([body.signature[-1] ^ 0xFF])
        answer.body = replace(body, signature=bad)
        await _refused(ctx, conn, answer)


@check("AUTH-007", "A replayed answer is refused", REF, category="auth", needs=NEEDS)
async def replay(ctx: Context) -> None:
    async with ctx.probe.tcp_connection() as conn:
        req, challenge = await _challenge(ctx, conn)
        answer = _answer(ctx, req, challenge)
        first = await _send(conn, answer)
        ctx.expect_code(first, ResponseCode.SUCCESS, "the first use of the answer")
        await _refused(ctx, conn, answer)


@check(
    "AUTH-008",
    "An answer to a challenge never issued is refused",
    REF,
    category="auth",
    needs=NEEDS,
)
async def unknown_challenge(ctx: Context) -> None:
    """The answer names a session id no challenge was filed under. HANDLE.NET looks the id
    up as a session first and refuses with 500 (SESSION_TIMEOUT); RFC 3652 names no code
    for this case, so any refusal that withholds the value passes."""
    async with ctx.probe.tcp_connection() as conn:
        req, challenge = await _challenge(ctx, conn)
        answer = _answer(ctx, req, challenge)
        sid = (challenge.envelope.session_id ^ 0x5A5A5A) or 1
        answer.envelope = replace(answer.envelope, session_id=sid)
        await _refused(ctx, conn, answer, (*FAILURES, ResponseCode.SESSION_TIMEOUT))


@check(
    "AUTH-009",
    "An answer of an unknown authentication type is refused",
    REF,
    category="auth",
    needs=NEEDS,
)
async def unknown_type(ctx: Context) -> None:
    async with ctx.probe.tcp_connection() as conn:
        req, challenge = await _challenge(ctx, conn)
        answer = _answer(ctx, req, challenge)
        answer.body = replace(answer.body, auth_type="HS_IDNODE_VERIFY")  # type: ignore[type-var]
        await _refused(ctx, conn, answer)


@check(
    "AUTH-010",
    "An answer naming a key index that does not exist is refused",
    REF,
    category="auth",
    needs=NEEDS,
)
async def wrong_index(ctx: Context) -> None:
    async with ctx.probe.tcp_connection() as conn:
        req, challenge = await _challenge(ctx, conn)
        answer = _answer(ctx, req, challenge)
        body = answer.body
        assert isinstance(body, bodies.ChallengeAnswerRequest)
        answer.body = replace(body, key_index=body.key_index + 4099)
        await _refused(ctx, conn, answer)


@check(
    "AUTH-011",
    "An authenticated identity without read rights gets no restricted value",
    "RFC 3651 §3.2.1",
    category="auth",
    needs=NEEDS,
)
async def stranger_read(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    async with ctx.probe.tcp_connection() as conn:
        req, challenge = await _challenge(ctx, conn)
        answer = _answer(ctx, req, challenge, fx.stranger)
        await _refused(ctx, conn, answer, (ResponseCode.NOT_AUTHORIZED, ResponseCode.ACCESS_DENIED))


@check(
    "SESS-001",
    "A Diffie-Hellman session (key exchange mode 4) is set up and MACs its answers",
    "RFC 3652 §3.8",
    severity=SHOULD,
    category="sessions",
    needs=("tcp",),
    source="HSJ's HandleResolver sets one up before every admin request; RFC 3652 allows 503",
)
async def dh_session(ctx: Context) -> None:
    """What HSJ does first: a ``SessionSetupRequest`` with its ``DH_PUB_KEY``; the answer
    carries a session id, the session cipher and the server's DH key in the client's group.
    Both sides derive the key; a certified request MAC'd with it is answered, and the answer's
    HS_MAC verifies under the same key."""
    creds = ctx.creds
    prefix = ctx.prefix or ctx.read_handle.split("/", 1)[0]
    handle, index = (
        (creds.identity.handle, creds.identity.index) if creds else (f"0.NA/{prefix}", 300)
    )
    ours = sc.DHKeyPair(sc.RFC3526_GROUP14_P, sc.RFC3526_GROUP14_G, random_bytes=ctx.random)
    setup = bodies.SessionSetupRequest(
        bodies.KEY_EXCHANGE_DH, 600, handle, index, public_key=ours.public.encode()
    )
    version = (2, 11)  # HS_MAC as HSJ 2.7+ computes it
    ask = ctx.request(OpCode.SESSION_SETUP, setup, version=version)
    async with ctx.probe.tcp_connection() as conn:
        msg = ctx.expect_code(await _send(conn, ask), ResponseCode.SUCCESS, "a DH session")
        body = msg.body
        session_id = msg.envelope.session_id
        ctx.expect(session_id != 0, "a session id in the answer's envelope", "0")
        ctx.expect(
            isinstance(body, bodies.SessionSetupResponse) and body.mode == bodies.KEY_EXCHANGE_DH,
            "a SessionSetupResponse of mode 4",
            describe(msg),
        )
        data = body.data  # type: ignore[union-attr]
        try:
            cipher = int.from_bytes(data[:4], "big")
            theirs = sc.decode_dh_public(data[4:])
            key = sc.key_from_dh(ours.agree(theirs), cipher)
        except (sc.SessionCryptoError, IndexError) as exc:
            raise CheckFailed("a cipher code and a DH_PUB_KEY in our group", f"{exc}") from None
        keys = suites.SessionKeys(bodies.KEY_EXCHANGE_DH, cipher, key, version)
        req = ctx.resolution(ctx.read_handle, flags=OpFlag.PO | OpFlag.CT, version=version)
        req.envelope = replace(req.envelope, session_id=session_id)
        reply = ctx.expect_code(
            await _send(conn, suites.mac_message(req, keys)),
            ResponseCode.SUCCESS,
            "a MAC'd resolution in the session",
        )
    ctx.expect(
        suites.mac_verifies(reply, keys),
        "an answer whose HS_MAC verifies under the session key",
        describe(reply),
    )
