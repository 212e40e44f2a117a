"""IDIS (Teleinfo ``id-pointer-sdk``): what the national SDK needs of a node, unchanged.

Requests are built as the SDK builds them (Teleinfo ``core/Encoder.java``,
``core/MsgConverter.java``, ``transport/TransportOnTcpLogin.java``): protocol 2.10 suggesting
2.11, the header flags CA|PO|REC, a resolution body ending in the SDK's length-prefixed
auth field, a client-chosen session id (the SDK counts from 10001 on every JVM) on every
request of a connection, and the 2001 login sent without a credential section. A Handle.Net
server fails these checks by design, so they run only with ``--idis``.

SM2 answers are made in the SDK's form (``PublicKeyAuthenticationInfo``: SM3withSM2 over
``SM3(nonce || digest)`` with the user's handle as the SM2 user id); RSA and DSA answers as
HSJ makes them (the SDK's are the same).
"""

from __future__ import annotations

from dataclasses import replace

from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.crypto.sm2 import SM2PrivateKey
from idnode.model import HS_PUBKEY, URL, HandleValue
from idnode.verify.conformance.catalogue import check
from idnode.verify.conformance.context import Context, Credentials
from idnode.verify.conformance.describe import describe
from idnode.verify.conformance.fixtures import PUBLIC, RESTRICTED_INDEX, admin_value
from idnode.verify.conformance.probes import TcpConnection
from idnode.wire import bodies
from idnode.wire.bodies import DigestAlgorithm, digest_request
from idnode.wire.envelope import encode_envelope
from idnode.wire.message import Message, encode_header_body

REF = "IDIS SDK (Teleinfo id-pointer-sdk)"
CAT = "idis"
SDK_FLAGS = OpFlag.CA | OpFlag.PO | OpFlag.REC  # AbstractMessage's defaults
LOGIN_FLAGS = OpFlag.REC | OpFlag.RD  # TransportOnTcpLogin.login: RD set, PO/CA/CT clear
SESSION = 10001  # SessionIdFactoryDefault: the first connection of every SDK process
SDK_CODES = frozenset(  # core/Encoder.decodeMessage: every code the SDK does not throw on
    {1, 2, 3, 4, 5, 6, 7, 100, 101, 102, 200, 201, 202, 300, 301, 302, 303}
    | {400, 401, 402, 403, 404, 405, 406, 500, 501, 502, 503, 504, 505}
    | {601, 602, 603, 604, 605}
)


def sdk_request(
    ctx: Context, opcode: int, body: bodies.Body, flags: OpFlag = SDK_FLAGS, session: int = 0
) -> Message:
    return ctx.request(opcode, body, flags, version=(2, 10), suggest=(2, 11), session_id=session)


def sdk_bytes(msg: Message) -> bytes:
    """Envelope + header + body (+ an empty credential section, except for the 2001 login,
    which ``MsgConverter`` sends without one)."""
    payload = encode_header_body(msg)
    if msg.header.opcode != OpCode.LOGIN_ID_SYSTEM:
        payload += b"\x00\x00\x00\x00"
    return encode_envelope(replace(msg.envelope, message_length=len(payload))) + payload


async def send(conn: TcpConnection, msg: Message) -> Message:
    return (await conn.exchange(sdk_bytes(msg), describe(msg)))[0].decoded()


def resolution(
    ctx: Context, handle: str, *, types: tuple[str, ...] = (), auth: bytes = b"", session=0
) -> Message:
    body = bodies.ResolutionRequest(handle, (), types, auth)
    return sdk_request(ctx, OpCode.RESOLUTION, body, session=session)


def expect_sdk_code(ctx: Context, msg: Message, wanted: int, what: str) -> None:
    code = msg.header.response_code
    ctx.expect(code in SDK_CODES, "a response code the SDK decodes", f"{code}")
    ctx.expect(
        code == wanted,
        f"response code {wanted} ({what})",
        f"{code} {getattr(msg.body, 'message', '')!r}",
    )


def answer_login(ctx: Context, creds: Credentials, login: Message, challenge: Message) -> Message:
    """The SDK's answer to a login challenge (opcode 200 under the challenge's session id)."""
    if isinstance(creds.private_key, SM2PrivateKey):
        from idnode.auth.answers import make_idis_sm2_answer

        ch = challenge.body
        assert isinstance(ch, bodies.ChallengeResponse)
        signed = make_idis_sm2_answer(creds.private_key, creds.identity.handle, ch.nonce, ch.digest)
        body = bodies.ChallengeAnswerRequest(
            HS_PUBKEY, creds.identity.handle, creds.identity.index, signed
        )
    else:
        body = ctx.signer(creds).answer_for(login, challenge).body  # type: ignore[assignment]
    return sdk_request(
        ctx, OpCode.CHALLENGE_RESPONSE, body, LOGIN_FLAGS, challenge.envelope.session_id
    )


async def login(ctx: Context, conn: TcpConnection, creds: Credentials | None = None) -> Message:
    """get-siteinfo, 2001, the answer: the final answer (the caller judges it)."""
    creds = creds or ctx.need_creds()
    site = await send(conn, sdk_request(ctx, OpCode.GET_SITEINFO, bodies.GetSiteInfoRequest("/"),
                                        session=SESSION))  # fmt: skip
    expect_sdk_code(ctx, site, ResponseCode.SUCCESS, "site information under its session id")
    body = bodies.LoginIdSystemRequest(creds.identity.handle, creds.identity.index)
    request = sdk_request(ctx, OpCode.LOGIN_ID_SYSTEM, body, LOGIN_FLAGS, SESSION)
    challenge = await send(conn, request)
    expect_sdk_code(ctx, challenge, ResponseCode.AUTHENTICATION_NEEDED, "a challenge to 2001")
    return await send(conn, answer_login(ctx, creds, request, challenge))


# -------------------------------------------------------------------------- resolution


@check(
    "IDIS-001",
    "A resolution ending in the SDK's auth field is answered",
    REF + " Encoder.encodeResolutionRequest",
    category=CAT,
    needs=("tcp", "idis"),
)
async def trailing_auth_field(ctx: Context) -> None:
    """The SDK always appends a length-prefixed auth string (empty: ``00 00 00 00``)."""
    async with ctx.probe.tcp_connection() as conn:
        msg = await send(conn, resolution(ctx, ctx.read_handle))
    expect_sdk_code(ctx, msg, ResponseCode.SUCCESS, "the record")
    ctx.expect(msg.header.expiration != 0, "an expiration time", "0")


@check(
    "IDIS-002",
    "A type filter with the SDK's auth field selects values",
    REF + " Encoder.encodeResolutionRequest",
    category=CAT,
    needs=("tcp", "admin", "idis"),
)
async def trailing_auth_with_types(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    async with ctx.probe.tcp_connection() as conn:
        msg = await send(conn, resolution(ctx, fx.record, types=(URL,)))
    expect_sdk_code(ctx, msg, ResponseCode.SUCCESS, "the URL value")
    types = {v.type for v in getattr(msg.body, "values", ())}
    ctx.expect(types == {URL}, "only the URL value", repr(sorted(types)))


@check(
    "IDIS-003",
    "Not found (100) and not responsible (301) with the SDK's auth field",
    REF + " Encoder.encodeResolutionRequest",
    category=CAT,
    needs=("tcp", "idis"),
)
async def trailing_auth_errors(ctx: Context) -> None:
    missing = f"{ctx.need_prefix()}/idnode-verify-{ctx.run_id}-absent"
    async with ctx.probe.tcp_connection() as conn:
        absent = await send(conn, resolution(ctx, missing))
        elsewhere = await send(conn, resolution(ctx, f"99.{ctx.run_id}/x"))
    expect_sdk_code(ctx, absent, ResponseCode.HANDLE_NOT_FOUND, "handle not found")
    expect_sdk_code(ctx, elsewhere, ResponseCode.SERVER_NOT_RESPONSIBLE, "a prefix not homed")
    for msg in (absent, elsewhere):
        ctx.expect(msg.header.expiration != 0, "an expiration time on errors", "0")


@check(
    "IDIS-004",
    "An auth string in a resolution proves no identity",
    REF + " ResolutionIdRequest.authBytes",
    category=CAT,
    needs=("tcp", "admin", "idis"),
)
async def auth_string_is_not_a_credential(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    creds = ctx.need_creds()
    claim = str(creds.identity).encode()  # "300:0.NA/...": who the client says it acts for
    body = bodies.ResolutionRequest(fx.record, (RESTRICTED_INDEX,), (), claim)
    request = sdk_request(ctx, OpCode.RESOLUTION, body, OpFlag.REC)  # PO clear
    async with ctx.probe.tcp_connection() as conn:
        msg = await send(conn, request)
    leaked = any(v.data == fx.restricted_data for v in getattr(msg.body, "values", ()))
    ctx.expect(not leaked, "the restricted value withheld", describe(msg))
    expect_sdk_code(ctx, msg, ResponseCode.AUTHENTICATION_NEEDED, "a challenge, as anonymous")


# -------------------------------------------------------------------------- the login


@check(
    "IDIS-010",
    "Get-siteinfo under a client-chosen session id is answered under that id",
    REF + " TransportOnTcpLogin.login",
    category=CAT,
    needs=("tcp", "idis"),
)
async def site_info_under_own_session(ctx: Context) -> None:
    request = sdk_request(ctx, OpCode.GET_SITEINFO, bodies.GetSiteInfoRequest("/"), session=SESSION)
    async with ctx.probe.tcp_connection() as conn:
        msg = await send(conn, request)
    expect_sdk_code(ctx, msg, ResponseCode.SUCCESS, "site information")
    ctx.expect(msg.envelope.session_id == SESSION, f"session id {SESSION}",
               str(msg.envelope.session_id))  # fmt: skip


@check(
    "IDIS-011",
    "The 2001 login is challenged with the SHA-256 digest of the login",
    REF + " TransportOnTcpLogin.login, PublicKeyAuthenticationInfo",
    category=CAT,
    needs=("tcp", "admin", "idis"),
)
async def login_is_challenged(ctx: Context) -> None:
    creds = ctx.need_creds()
    body = bodies.LoginIdSystemRequest(creds.identity.handle, creds.identity.index)
    request = sdk_request(ctx, OpCode.LOGIN_ID_SYSTEM, body, LOGIN_FLAGS, SESSION)
    async with ctx.probe.tcp_connection() as conn:
        msg = await send(conn, request)
    expect_sdk_code(ctx, msg, ResponseCode.AUTHENTICATION_NEEDED, "a challenge")
    ctx.expect(msg.header.opcode == OpCode.LOGIN_ID_SYSTEM, "opcode 2001",
               str(msg.header.opcode))  # fmt: skip
    ch = msg.body
    assert isinstance(ch, bodies.ChallengeResponse)
    want = digest_request(encode_header_body(request), DigestAlgorithm.SHA256)
    ctx.expect(ch.digest == want, f"SHA-256 digest {want.digest.hex()}",
               f"algorithm {ch.digest.algorithm} {ch.digest.digest.hex()}")  # fmt: skip


@check(
    "IDIS-012",
    "After the login, a create and a delete on the connection need no challenge",
    REF + " TransportOnTcpLogin.process",
    category=CAT,
    needs=("tcp", "admin", "idis"),
)
async def logged_in_connection_administers(ctx: Context) -> None:
    creds = ctx.need_creds()
    handle = ctx.new_name("idis")
    values = (
        HandleValue(1, URL, b"https://example.org/idis", PUBLIC),
        admin_value(creds.identity),
    )
    async with ctx.probe.tcp_connection() as conn:
        done = await login(ctx, conn)
        expect_sdk_code(ctx, done, ResponseCode.SUCCESS, "the login accepted")
        ctx.expect(done.header.opcode == OpCode.LOGIN_ID_SYSTEM, "the answer as 2001",
                   str(done.header.opcode))  # fmt: skip
        create = bodies.CreateHandleRequest(handle, values)
        made = await send(conn, sdk_request(ctx, OpCode.CREATE_HANDLE, create, session=SESSION))
        expect_sdk_code(ctx, made, ResponseCode.SUCCESS, "the create, without a challenge")
        delete = bodies.DeleteHandleRequest(handle)
        gone = await send(conn, sdk_request(ctx, OpCode.DELETE_HANDLE, delete, session=SESSION))
        expect_sdk_code(ctx, gone, ResponseCode.SUCCESS, "the delete, without a challenge")


@check(
    "IDIS-013",
    "A login binds its connection only: the same session id elsewhere is anonymous",
    REF + " SessionIdFactoryDefault",
    category=CAT,
    needs=("tcp", "admin", "idis"),
)
async def login_bound_to_connection(ctx: Context) -> None:
    creds = ctx.need_creds()
    handle = ctx.new_name("idis-other")
    create = bodies.CreateHandleRequest(
        handle, (HandleValue(1, URL, b"x", PUBLIC), admin_value(creds.identity))
    )
    async with ctx.probe.tcp_connection() as first:
        done = await login(ctx, first)
        expect_sdk_code(ctx, done, ResponseCode.SUCCESS, "the login accepted")
        async with ctx.probe.tcp_connection() as second:
            site = sdk_request(
                ctx, OpCode.GET_SITEINFO, bodies.GetSiteInfoRequest("/"), session=SESSION
            )
            await send(second, site)
            msg = await send(
                second, sdk_request(ctx, OpCode.CREATE_HANDLE, create, session=SESSION)
            )
    ctx.expect(
        msg.header.response_code != ResponseCode.SUCCESS,
        "the other connection not logged in",
        describe(msg),
    )
    expect_sdk_code(ctx, msg, ResponseCode.AUTHENTICATION_NEEDED, "a challenge")


@check(
    "IDIS-014",
    "A wrong login answer is refused and leaves the connection anonymous",
    REF + " TransportOnTcpLogin.login",
    category=CAT,
    needs=("tcp", "admin", "idis"),
)
async def wrong_login_refused(ctx: Context) -> None:
    fx = ctx.need_fixtures()
    creds = ctx.need_creds()
    # the fixture's made-up secret, claimed for --admin's identity: it cannot verify
    impostor = Credentials(creds.identity, secret=fx.stranger.secret)
    async with ctx.probe.tcp_connection() as conn:
        done = await login(ctx, conn, impostor)
        body = bodies.DeleteHandleRequest(fx.record)
        after = await send(conn, sdk_request(ctx, OpCode.DELETE_HANDLE, body, session=SESSION))
    ctx.expect(
        done.header.response_code
        in (ResponseCode.AUTHENTICATION_FAILED, ResponseCode.INVALID_CREDENTIAL),
        "403 or 404 for the answer",
        describe(done),
    )
    expect_sdk_code(ctx, after, ResponseCode.AUTHENTICATION_NEEDED, "a challenge afterwards")
