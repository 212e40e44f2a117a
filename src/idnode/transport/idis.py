"""The IDIS dialect of the binary protocol, spoken beside Handle.Net's on the same ports.

China's national top-level nodes (IDIS) speak Handle 2.10/2.11 with extensions, and their
clients use Teleinfo's ``id-pointer-sdk``. Where the SDK parts from Handle.Net
(docs/compatibility.md, "IDIS"):

* **Client-chosen sessions.** A Handle.Net server issues session ids (a session setup, HSJ
  ``SessionManager``) and answers an id it did not issue with 500. The SDK instead numbers
  its TCP connections itself (``SessionIdFactoryDefault``: 10001, 10002, ... in every JVM)
  and sends that number in the envelope of every request on the connection.
* **The login, opcode 2001** (``OC_LOGIN_ID_SYSTEM``, ``TransportOnTcpLogin.login``): on a
  new connection, get-siteinfo, then 2001 naming the user's handle and index; the server
  challenges it (402, with the SHA-256 request digest the login asked for), the client
  answers with an ordinary challenge answer (opcode 200) under the challenge's session id,
  and from then on every request on the connection is that user's. A 2001 answered
  without a challenge is a failed login for the SDK.
* **Response codes.** The SDK throws on any code its decoder does not list; it lists the
  IDIS quota codes 603-605, which Handle.Net's does not.

How idnode keeps both kinds of client working (``[protocol] profile``):

* A session id the client chose is only ever meaningful **on its connection**: it is kept
  in that connection's ``StreamSession`` (created by the TCP transport, gone when the
  connection closes), never in the node's session table. Two SDK processes on one host both
  call their first connection 10001; neither can reach the other's login, and no client can
  reach a session the node issued to another.
* ``handle``: nothing of this; 2001 is OPERATION_NOT_SUPPORTED, unknown session ids 500.
* ``idis``: every TCP connection is an SDK's: the first non-zero session id it sends
  becomes its session (unless the node issued that id to this host, which keeps its HSJ
  meaning), and every answer's code is one the SDK decodes.
* ``auto`` (default): a connection becomes IDIS when it sends opcode 2001, or its first
  request as the SDK makes it under a non-zero session id of its own: get-siteinfo, or a
  session setup (the SDK's encrypted connections begin with one, ``TransportEncryptHandler``;
  an id the node issued to this host keeps its HSJ meaning). Otherwise it is treated as
  Handle.Net's. UDP has no connection: it is always Handle.Net's, except that the
  ``idis`` profile maps its codes too.

The identity of a login is proven exactly as any challenge answer (``wire_auth
.verify_answer``: HS_PUBKEY with RSA, DSA or SM2, SM2 in either the SDK's or the standard
form; HS_SECKEY), charged to the same authentication limits.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from idnode.auth.challenge import ChallengeBook
from idnode.auth.identity import Identity
from idnode.codes import OpCode, ResponseCode
from idnode.config import ConfigError
from idnode.errors import (
    AuthenticationFailed,
    AuthenticationNeeded,
    AuthenTimeout,
    IdnodeError,
    InvalidCredential,
    SessionFailed,
    SessionTimeout,
    UnableToAuthenticate,
)
from idnode.model import handle_key
from idnode.transport.wire_auth import peer_host, verify_answer
from idnode.wire import bodies
from idnode.wire.envelope import reply_version
from idnode.wire.message import Message, make_challenge, make_error, request_digest_of

log = logging.getLogger("idnode.idis")

HANDLE, IDIS, AUTO = "handle", "idis", "auto"
PROFILES = (HANDLE, IDIS, AUTO)

# Every code Handle.Net's decoder accepts (HSJ ``Encoder.decodeMessage``); the SDK's adds the
# quota codes (its own 601/602 never come from a server, but it would decode them).
HANDLE_RESPONSE_CODES = frozenset(
    {1, 2, 3, 4, 5, 6, 7, 100, 101, 102, 200, 201, 202, 300, 301, 302, 303}
    | {400, 401, 402, 403, 404, 405, 406, 500, 501, 502, 503, 504, 505}
)
IDIS_RESPONSE_CODES = HANDLE_RESPONSE_CODES | {601, 602, 603, 604, 605}

_LOGIN = "login"  # the one pending challenge a connection's book holds
_AUTH_FAILURES = (AuthenticationFailed, InvalidCredential, UnableToAuthenticate, AuthenTimeout)


@dataclass(eq=False)
class StreamSession:
    """What one stream connection established about itself; it dies with the connection.

    ``session_id``: the id the client chose for the connection (None: not IDIS, or not yet);
    ``identity``: who logged in on it (None: nobody yet).
    """

    session_id: int | None = None
    identity: Identity | None = None
    book: ChallengeBook | None = None  # the pending login challenge, if any
    # a replication stream to send after the answer just written (then the connection
    # closes, as HSJ's does after a stream): ``transport.tcp``
    stream: AsyncIterator[bytes] | None = None

    @property
    def is_idis(self) -> bool:
        return self.session_id is not None


@dataclass(frozen=True, slots=True)
class _LoginClaim:
    """The 2001 request waiting for its answer, and whom it claimed to be."""

    request: Message
    handle: str
    index: int  # 0: any key of ``handle``


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ConfigError(
            f"[protocol] profile must be one of {', '.join(PROFILES)}, got {profile!r}"
        )
    return profile


class IdisDialect:
    """Decides which requests belong to a connection's IDIS session and answers them.

    ``handler`` arguments are the ``WireHandler`` (its services, limits, session table and
    answer helpers); passed in rather than imported, as the handler owns this dialect.
    """

    def __init__(
        self,
        profile: str,
        clock: Callable[[], float],
        random_bytes: Callable[[int], bytes],
        challenge_ttl: float,
    ) -> None:
        self.profile = check_profile(profile)
        self.clock = clock
        self.random_bytes = random_bytes
        self.challenge_ttl = challenge_ttl

    # -- whose request is it -----------------------------------------------------------------
    def claims(self, handler: Any, request: Message, peer: str, conn: StreamSession) -> bool:
        """Whether ``request`` belongs to the connection's IDIS session (adopting its session
        id when the profile says this is the moment)."""
        if self.profile == HANDLE:
            return False
        opcode, sid = request.header.opcode, request.envelope.session_id
        if opcode == OpCode.LOGIN_ID_SYSTEM:
            return True  # ``_login`` binds (or refuses) the session it names
        if conn.session_id is not None:
            return sid == conn.session_id
        if sid == 0:
            return False
        # the SDK's first request on a connection: get-siteinfo before its login, or (when it
        # wants encryption) a session setup naming the connection's own id
        first = opcode == OpCode.GET_SITEINFO or (
            (opcode == OpCode.SESSION_SETUP or self.profile == IDIS)
            and not _issued_here(handler, sid, peer)
        )
        if first:
            conn.session_id = sid
        return first

    def for_idis(self, conn: StreamSession | None) -> bool:
        """Whether answers on this connection go to an IDIS SDK."""
        return self.profile == IDIS or (conn is not None and conn.is_idis)

    def outgoing(self, response: Message, conn: StreamSession | None) -> Message:
        """``response`` with an error code the client decodes: a code outside its decoder's
        list becomes ERROR (2), the original code kept in the message text."""
        known = IDIS_RESPONSE_CODES if self.for_idis(conn) else HANDLE_RESPONSE_CODES
        code = int(response.header.response_code)
        body = response.body
        if code in known or not isinstance(body, bodies.ErrorResponse):
            return response
        header = replace(response.header, response_code=ResponseCode.ERROR)
        text = f"{body.message} (response code {code})"
        return replace(response, header=header, body=bodies.ErrorResponse(text, body.indexes))

    # -- answering ---------------------------------------------------------------------------
    async def dispatch(
        self, handler: Any, request: Message, peer: str, conn: StreamSession
    ) -> Message:
        """Answer a request of the connection's IDIS session."""
        opcode = request.header.opcode
        if opcode == OpCode.LOGIN_ID_SYSTEM:
            return self._login(handler, request, conn)
        if opcode == OpCode.CHALLENGE_RESPONSE:
            if conn.book is not None and conn.book.peek(_LOGIN) is not None:
                return await self._finish_login(handler, request, peer, conn)
            return await handler.dispatch(request, peer)  # an ordinary challenge's answer
        if opcode == OpCode.SESSION_TERMINATE:  # logging out: the connection stays
            conn.identity = None
            return handler._respond(request, bodies.EmptyResponse())
        who = conn.identity
        try:
            return await handler.execute(request, who, peer)
        except AuthenticationNeeded:
            if who is not None:
                raise
            return handler._challenge(request, peer)  # answered as any challenge

    def _login(self, handler: Any, request: Message, conn: StreamSession) -> Message:
        """2001: always challenged (the SDK takes an unchallenged success for a failure)."""
        body = request.body
        if not isinstance(body, bodies.LoginIdSystemRequest):  # pragma: no cover - decoder
            raise InvalidCredential("not a login request")
        sid = request.envelope.session_id
        if sid == 0:
            raise SessionFailed("an IDIS login names its connection's session id in the envelope")
        if not body.handle or body.index < 0:
            raise InvalidCredential("a login names the user's handle and key index")
        conn.session_id, conn.identity = sid, None  # a new login replaces the last
        if conn.book is None:
            conn.book = ChallengeBook(
                self.clock, self.random_bytes, ttl=self.challenge_ttl, max_pending=1
            )
        digest = request_digest_of(request, reply_version(request.envelope))
        claim = _LoginClaim(request, body.handle, body.index)
        nonce = conn.book.issue(_LOGIN, digest, request=claim)
        challenge = make_challenge(request, nonce)  # the envelope keeps the client's id
        challenge.header = replace(
            challenge.header,
            site_serial=handler.node.site_serial,
            expiration=handler._expiration(),
        )
        return challenge

    async def _finish_login(
        self, handler: Any, answer: Message, peer: str, conn: StreamSession
    ) -> Message:
        """The answer to a login's challenge: verified as any answer; on success the
        connection is the user's. Answered as the login (opcode 2001), under the answer's
        request id, as HSJ answers the original request of any challenge."""
        body = answer.body
        if not isinstance(body, bodies.ChallengeAnswerRequest):
            raise InvalidCredential("not a challenge answer")
        host, named = peer_host(peer), f"{body.key_index}:{body.key_handle}"
        if not handler.limits.may_try_auth(host, named):
            raise IdnodeError(
                "too many failed authentication attempts for this identity",
                code=ResponseCode.SERVER_BUSY,
            )
        assert conn.book is not None
        try:
            pending = conn.book.take(_LOGIN)  # AuthenTimeout when expired
        except AuthenTimeout:
            handler.limits.auth_failed(host, named)
            raise
        if pending is None:  # pragma: no cover - peeked just before
            raise AuthenTimeout("no login is waiting for an answer")
        claim: _LoginClaim = pending.request  # type: ignore[assignment]
        try:
            who = await verify_answer(handler.node.store, handler.node.homed, body, pending)
            if handle_key(who.handle) != handle_key(claim.handle) or claim.index not in (
                0,
                who.index,
            ):
                raise AuthenticationFailed(
                    f"the answer proves {who}, the login was for {claim.index}:{claim.handle}"
                )
            conn.identity = who
            log.info("IDIS login of %s on %s (session %s)", who, peer, conn.session_id)
            response = handler._respond(claim.request, bodies.EmptyResponse())
        except IdnodeError as exc:
            if isinstance(exc, _AUTH_FAILURES):
                handler.limits.auth_failed(host, named)
            response = make_error(
                claim.request.envelope,
                claim.request.header,
                exc.code,
                str(exc),
                expiration=handler._expiration(),
            )
        response.envelope = replace(response.envelope, request_id=answer.envelope.request_id)
        return response


def _issued_here(handler: Any, session_id: int, peer: str) -> bool:
    """Whether the node issued ``session_id`` (a session setup) to this client's host."""
    try:
        handler.sessions.identity(session_id, peer)
    except SessionTimeout:
        return False
    return True
