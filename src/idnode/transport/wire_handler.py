"""From one decoded Handle message to its answer: the bridge between the wire and the services.

UDP and TCP share this: they deliver ``(envelope, payload)`` frames, and get back the encoded
response message (envelope included). Every failure becomes a Handle error response; nothing
a client sends can raise out of ``answer``.

Every operation goes through the node's services (``Resolver``, ``AdminService``) with the
identity the request proved, or None. When a service says an identity is needed
(``AuthenticationNeeded``) the request is challenged instead; ``wire_auth`` explains how the
answer finds it again and how sessions spare a bulk client one challenge per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import assert_never

from idnode.auth.challenge import ChallengeBook
from idnode.auth.identity import Identity
from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.errors import (
    AuthenticationFailed,
    AuthenticationNeeded,
    IdnodeError,
    InvalidCredential,
    InvalidHandle,
    MalformedMessage,
    NotAuthorized,
    NotPrimary,
    OperationNotSupported,
    ProtocolError,
    SessionFailed,
    UnableToAuthenticate,
)
from idnode.model import NA_PREFIX, PublicAnswer, StoredWire, handle_key
from idnode.service.node import Node
from idnode.service.replication import ReplicationSource, share_of
from idnode.service.resolve import Admit, NeedsAuth, Referral, ResolutionQuery, Values
from idnode.transport.idis import AUTO, IdisDialect, StreamSession
from idnode.transport.limits import Limits
from idnode.transport.response_cache import ResponseCache, requested_handle
from idnode.transport.signing import encode_signed
from idnode.transport.wire_auth import (
    PendingRequests,
    SessionRegistry,
    peer_host,
    random_id,
    verify_answer,
)
from idnode.transport.wire_sessions import KEYED_MODES, KeyedSessions, session_suites
from idnode.wire import bodies, peek
from idnode.wire.envelope import Envelope, reply_version
from idnode.wire.header import HEADER_SIZE, MAX_RECURSION_COUNT, decode_header
from idnode.wire.message import (
    Message,
    decode_message,
    make_challenge,
    make_error,
    make_response,
    request_digest_of,
)
from idnode.wire.public_answer import (
    datagram_answer,
    datagram_query,
    plain_envelope,
    plain_payload,
    resolution_answer,
)
from idnode.wire.site import ADMIN_OPCODES, NOT_AN_ADMIN_INTERFACE

log = logging.getLogger("idnode.wire")

EXPIRATION_SECONDS = 12 * 3600  # how long an answer stays valid, as Handle.Net servers say
LIST_HANDLES_PER_MSG = 50  # HSJ HandleServer: handles per message of a streamed listing
CHALLENGE_TTL = 60.0  # seconds a challenge may wait for its answer
SESSION_TIMEOUT = 3600.0  # seconds a session may sit idle
SESSION_MODE_IDENTITY = bodies.KEY_EXCHANGE_NONE  # our session mode: identity binding only

_OW, _MINT, _PO, _CN = OpFlag.OW, OpFlag.MINT, OpFlag.PO, OpFlag.CN
_REC, _DNRF = OpFlag.REC, OpFlag.DNRF
# requests that begin an authentication: each spends a token of the client's auth bucket
_SETUPS = frozenset({OpCode.SESSION_SETUP, OpCode.LOGIN_ID_SYSTEM})
# Answers kept by the response cache: found, and not found (negative caching, as DNS
# resolvers do, RFC 2308). Every hit still passes the resolver's gate under the requested
# handle (statistics, lifecycle tombstones), and lifecycle changes clear the cache.
_CACHEABLE_CODES = frozenset({ResponseCode.SUCCESS, ResponseCode.HANDLE_NOT_FOUND})
_EXPIRATION_AT = 20 + 16  # an encoded answer's expiration: after the envelope, header bytes 16-19


class WireHandler:
    """Answers Handle protocol requests for one node.

    The node's clock and random source (``node.runtime``) reach the challenge book and the
    session table, so tests built on a ``ManualClock`` expire a nonce without waiting for it.
    """

    def __init__(
        self,
        node: Node,
        *,
        challenge_ttl: float | None = None,
        session_timeout: float | None = None,
        limits: Limits | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        from idnode.auth.sessions import SessionTable

        self.node = node
        self.clock = clock = node.runtime.clock
        self.random_bytes = random_bytes = node.runtime.random
        auth = node.config.auth
        ttl = challenge_ttl or auth.challenge_ttl or CHALLENGE_TTL
        timeout = session_timeout or auth.session_timeout or SESSION_TIMEOUT
        self.pending = PendingRequests(ChallengeBook(clock, random_bytes, ttl=float(ttl)))
        self.sessions = SessionRegistry(SessionTable(clock, random_bytes, timeout=timeout))
        # keyed sessions (modes 1-4: DH, RSA/SM2 key transport), as HSJ sets them up
        self.keyed = KeyedSessions(
            node,
            self.sessions,
            respond=self._respond,
            random_bytes=random_bytes,
            enabled=session_suites(auth),
        )
        if limits is None:  # rate limits from [limits]; buckets run on the monotonic clock
            section = getattr(node.config, "limits", None)
            limits = (
                Limits.from_settings(section, clock.monotonic)
                if section is not None
                else Limits.unlimited()
            )
        self.limits = limits
        # the IDIS dialect beside Handle.Net's ([protocol] profile; transport.idis)
        protocol = getattr(node.config, "protocol", None)
        profile = getattr(protocol, "profile", AUTO)
        self.idis = IdisDialect(profile, clock, random_bytes, float(ttl))
        # encoded answers to anonymous resolutions; None disables (set by the server, which
        # also subscribes it to the store's write announcements)
        self.cache: ResponseCache | None = cache

    def _expiration(self) -> int:
        return int(self.clock()) + EXPIRATION_SECONDS

    def _fresh(self, encoded: bytes) -> bool:
        """Whether a cached answer has at least half its validity left: HSJ's resolver refuses
        an answer whose expiration has passed (GOT_EXPIRED_MESSAGE), and a node that sees no
        write for twelve hours must not keep serving one."""
        expiration = int.from_bytes(encoded[_EXPIRATION_AT : _EXPIRATION_AT + 4], "big")
        return expiration - int(self.clock()) >= EXPIRATION_SECONDS // 2

    def _respond(self, request: Message, body: bodies.Body) -> Message:
        return make_response(
            request, body, site_serial=self.node.site_serial, expiration=self._expiration()
        )

    # -- frames in, bytes out ----------------------------------------------------------------
    async def answer(
        self,
        envelope: Envelope,
        payload: bytes,
        peer: str = "",
        *,
        udp: bool = False,
        conn: StreamSession | None = None,
        datagram_key: bytes | None = None,
    ) -> bytes | None:
        """The encoded response to one request frame, or None when nothing should be sent.

        A listing is answered in one message here (UDP has no stream to continue on); TCP
        transports may use ``answer_messages`` to stream it in HSJ's 50-handle pieces.
        ``udp``: the peer address is only claimed (spoofable): its budgets are UDP's own.
        ``conn``: the stream connection's own session state (``transport.idis``), for TCP.
        ``datagram_key``: ``ResponseCache.datagram_key`` of the request when it came whole in
        one datagram, so that its answer is kept where the next such datagram looks.
        """
        busy = self._over_limit(payload, peer_host(peer), udp)
        key = None if busy or self.cache is None else self.cache.key(envelope, payload)
        if key is not None:
            if datagram_key is not None:
                key = datagram_key  # (the same request: key accepted it)
            hit = self.cache.get(key, envelope.request_id)
            if (
                hit is not None
                and self._fresh(hit[0])
                and self.node.resolver.admits_mapped(hit[1], peer_host(peer))
            ):
                return hit[0]
            generation = self.cache.generation
        if not busy and not (udp and self.node.store.inline_answers):
            # (a datagram read inline tried it already: answer_datagram_stored)
            stored = await self._answer_stored(envelope, payload, peer_host(peer))
            if stored is not None:
                if key is not None:
                    self._keep(key, stored, generation, requested_handle(payload))
                return stored
        response = await self._answer_message(
            envelope, payload, peer, busy=busy, udp=udp, conn=conn
        )
        if response is None:
            return None
        encoded = self._encode(response, conn)
        if key is not None and response.header.response_code in _CACHEABLE_CODES:
            self._keep(key, encoded, generation, requested_handle(payload))
        return encoded

    def _keep(self, key: bytes, answer: bytes, generation: int, name: str) -> None:
        """Put ``answer`` in the cache with the name the resolver's gate speaks of, mapped
        once here rather than on every hit; a name that does not map is not kept (the full
        path answers it each time, as it must)."""
        assert self.cache is not None
        handle = self.node.resolver.gate_name(name)
        if handle is not None:
            self.cache.put(key, answer, generation, handle)

    # -- the store path: a stored public answer and an envelope (wire.public_answer) ----------
    async def _answer_stored(self, envelope: Envelope, payload: bytes, host: str) -> bytes | None:
        """The answer to a plain anonymous resolution from its record's stored public answer
        (``Resolver.stored_answer``), or None for the full path. The caller charged the
        client's rate limit."""
        version = plain_envelope(envelope)
        query = None if version is None else plain_payload(payload)
        if query is None:
            return None
        public_only = query[1]
        answer = await self.node.resolver.stored_answer(
            query[0], host, lambda a: public_only or not a.restricted
        )
        if answer is None:
            return None
        request_id = envelope.request_id.to_bytes(4, "big")
        return self._stored_reply(version, request_id, payload, answer)

    def answer_datagram_stored(
        self, datagram: bytes, host: str, *, udp: bool = True
    ) -> bytes | None:
        """``_answer_stored`` of a one-datagram request, without a task, when the store reads
        inline (SQLite); None for the full path. The client's rate-limit token is spent only
        when the answer comes from here (as for a cached answer). ``udp=False``: a whole
        message that came in one TCP read, answered by its bytes alike."""
        if not self.node.store.inline_answers:
            return None
        query = datagram_query(datagram)
        if query is None:
            return None
        handle = query[0]
        admit = self._admission(query[1], host, udp)
        answer = self.node.resolver.stored_wire_now(handle, host, admit)
        if answer is None:
            return None
        reply = datagram_answer(
            datagram,
            query,
            answer.wire,
            site_serial=self.node.site_serial,
            expiration=self._expiration(),
        )
        cache = self.cache
        if cache is not None:  # hot identifiers then come from the cache
            key = cache.datagram_key(datagram)  # (datagram_query accepted it)
            if key is not None:
                self._keep(key, reply, cache.generation, handle)
        return reply

    def answer_frame_stored(self, envelope: Envelope, payload: bytes, host: str) -> bytes | None:
        """``answer_datagram_stored`` for a request already framed (TCP): read inline, so a
        connection's next request is parsed in the same turn, without a task."""
        if not self.node.store.inline_answers:
            return None
        version = plain_envelope(envelope)
        query = None if version is None else plain_payload(payload)
        if query is None:
            return None
        request_id = envelope.request_id.to_bytes(4, "big")
        return self._stored_now(
            query,
            version,
            request_id,
            payload,
            host,
            False,
            lambda cache: cache.key(envelope, payload),
        )

    def _stored_now(
        self,
        query: tuple[str, bool],
        version: bytes,
        request_id: bytes,
        payload: bytes,
        host: str,
        udp: bool,
        cache_key: Callable[[ResponseCache], bytes | None],
    ) -> bytes | None:
        """The stored answer read now; ``cache_key`` is only worked out for an answer."""
        handle, public_only = query
        answer = self.node.resolver.stored_wire_now(
            handle, host, self._admission(public_only, host, udp)
        )
        if answer is None:
            return None
        reply = self._stored_reply(version, request_id, payload, answer)
        cache = self.cache
        if cache is not None:  # hot identifiers then come from the cache
            key = cache_key(cache)
            if key is not None:
                self._keep(key, reply, cache.generation, handle)
        return reply

    def _admission(self, public_only: bool, host: str, udp: bool) -> Admit:
        limits = self.limits

        def admit(answer: PublicAnswer | StoredWire) -> bool:
            # the restricted-read rule's last case (restricted values wanted, nobody
            # authenticated) is the full path's: it challenges; so is a client over its limit
            return (public_only or not answer.restricted) and limits.allow_request(host, udp=udp)

        return admit

    def _stored_reply(
        self, version: bytes, request_id: bytes, payload: bytes, answer: PublicAnswer | StoredWire
    ) -> bytes:
        return resolution_answer(
            version,
            request_id,
            payload,
            answer.wire,
            site_serial=self.node.site_serial,
            expiration=self._expiration(),
        )

    def answer_frame_cached(self, envelope: Envelope, payload: bytes, host: str) -> bytes | None:
        """``answer_datagram_cached`` for a request already framed (TCP): no task, no store."""
        cache = self.cache
        if cache is None:
            return None
        key = cache.key(envelope, payload)
        if key is None:
            return None
        request_id = envelope.request_id.to_bytes(4, "big")
        return self._cached_answer(cache, key, request_id, host, udp=False)

    def answer_datagram_cached(
        self, datagram: bytes, host: str, *, udp: bool = True
    ) -> bytes | None:
        """The cached answer to a request that arrived whole in one datagram, or None.

        The UDP hot path: no envelope decoded, no task, no store; one dict lookup of the
        datagram's bytes (``ResponseCache.datagram_key``). The client is charged its
        rate-limit token only when the answer comes from here (otherwise ``answer`` does).
        """
        cache = self.cache
        if cache is None:
            return None
        return self._cached_answer(
            cache, cache.datagram_key(datagram), datagram[8:12], host, udp=udp
        )

    def _cached_answer(
        self, cache: ResponseCache, key: bytes, request_id: bytes, host: str, *, udp: bool
    ) -> bytes | None:
        hit = cache.hit(key)
        if hit is None or not self.limits.allow_request(host, udp=udp):
            return None  # a miss; or over the limit: the full path answers SERVER_BUSY
        answer = hit[0]
        if not self._fresh(answer) or not self.node.resolver.admits_mapped(hit[1], host):
            return None
        return answer[:8] + request_id + answer[12:]  # the request id, as in the request

    async def answer_messages(
        self,
        envelope: Envelope,
        payload: bytes,
        peer: str = "",
        *,
        conn: StreamSession | None = None,
    ) -> list[bytes]:
        """The encoded responses to one frame, a long listing split with the CN flag (HSJ).
        ``conn``: the connection's own session state (``transport.idis``)."""
        if payload[:4] == b"\x00\x00\x00\x01":
            # resolution: one message, cached, or from the store path
            one = await self.answer(envelope, payload, peer, conn=conn)
            return [] if one is None else [one]
        response = await self._answer_message(envelope, payload, peer, conn=conn)
        if response is None:
            return []
        if response.stream is not None:  # a replication stream follows the answer
            stream, response.stream = response.stream, None
            if conn is None:
                await stream.aclose()
                text = "replication streams are served on TCP connections only"
                response = make_error(
                    response.envelope, None, ResponseCode.OPERATION_NOT_SUPPORTED, text
                )
            else:
                conn.stream = stream
        return [self._encode(m, conn) for m in split_listing(response)]

    def _encode(self, response: Message, conn: StreamSession | None = None) -> bytes:
        """Encoded; signed with the HS_SITE key when the request set CT (RFC 3652, signing.py).

        Every answer leaves with an expiration time: errors, challenges and session refusals
        are built without one (``make_error``, ``make_challenge``), and HSJ's resolver refuses
        a message whose expiration has passed, 0 included (GOT_EXPIRED_MESSAGE). HSJ stamps
        every message it builds twelve hours ahead (``AbstractMessage``); so do we."""
        if response.header.expiration == 0:
            response.header = replace(response.header, expiration=self._expiration())
        sealed = self.keyed.seal(response, conn, self.node.private_key)  # a keyed session's
        return sealed if sealed is not None else encode_signed(response, self.node.private_key)

    def encode_error(self, envelope: Envelope, code: int, text: str) -> bytes:
        """An encoded error to a request whose envelope was all that could be read (the
        HTTP interface's checks, ``http_native``), stamped like every answer."""
        return self._encode(make_error(envelope, None, code, text))

    async def _answer_message(
        self,
        envelope: Envelope,
        payload: bytes,
        peer: str,
        *,
        busy: str | None = None,
        udp: bool = False,
        conn: StreamSession | None = None,
    ) -> Message | None:
        if envelope.encrypted:  # under a session key (wire_sessions); HSJ answers opcode 0
            try:
                envelope, payload = self.keyed.open(envelope, payload, conn)
            except IdnodeError as exc:
                return make_error(envelope, None, exc.code, str(exc))
        if busy is None:  # not yet checked by the caller
            busy = self._over_limit(payload, peer_host(peer), udp)
        if busy:
            header = _header_or_none(payload)
            if header is not None and header.response_code != 0:
                return None
            return make_error(envelope, header, ResponseCode.SERVER_BUSY, busy)
        try:
            request = decode_message(envelope, payload)
        except MalformedMessage as exc:
            header = _header_or_none(payload)
            if header is not None and header.response_code != 0:
                return None  # a malformed *response* sent to us: never answer answers
            log.info("malformed request from %s: %s", peer, exc)
            return make_error(envelope, header, exc.code, str(exc))
        except IdnodeError as exc:  # e.g. an unsupported protocol version
            return make_error(envelope, _header_or_none(payload), exc.code, str(exc))
        if request.header.response_code != 0:
            return None
        if request.header.recursion_count > MAX_RECURSION_COUNT:
            return make_error(
                request.envelope,
                request.header,
                ResponseCode.RECURSION_COUNT_TOO_HIGH,
                f"recursion count above {MAX_RECURSION_COUNT}",
            )
        try:
            response = await self.dispatch(request, peer, udp=udp, conn=conn)
        except IdnodeError as exc:
            response = _error_with_digest(request, exc.code, str(exc))
        except Exception:  # a bug must cost one answer, not the server
            log.exception("internal error answering opcode %s", request.header.opcode)
            return make_error(
                request.envelope, request.header, ResponseCode.ERROR, "internal server error"
            )
        return self.idis.outgoing(response, conn)  # only codes the client's decoder knows

    def _over_limit(self, payload: bytes, host: str, udp: bool = False) -> str:
        """Why this client is refused before its request is even decoded ("" = admitted).

        Every request spends a resolution token; a session setup also spends an
        authentication token, and a challenge answer is refused while the client's
        authentication bucket is empty (its failures are charged in ``_answer_challenge``).
        Over UDP the buckets are UDP's own (``limits.py``: a spoofed source spends them).
        """
        limits = self.limits
        if not limits.allow_request(host, udp=udp):
            return "rate limit exceeded for this client; slow down"
        opcode = peek.opcode(payload)
        if opcode in _SETUPS and not limits.allow_auth_attempt(host, udp=udp):
            return "too many authentication attempts from this client"
        if opcode == OpCode.CHALLENGE_RESPONSE and not limits.may_try_auth(host, udp=udp):
            return "too many authentication attempts from this client"
        return ""

    # -- who is asking ---------------------------------------------------------------------
    async def dispatch(
        self,
        request: Message,
        peer: str = "",
        *,
        udp: bool = False,
        conn: StreamSession | None = None,
    ) -> Message:
        """Answer one request: as its session's identity, anonymously, or with a challenge.

        On a stream connection an IDIS client's requests (its own session id, its 2001
        login) are the dialect's (``transport.idis``); everything else is answered here."""
        if conn is not None and self.idis.claims(self, request, peer, conn):
            if self.keyed.claims_setup(request, conn):  # the SDK's encrypted connection
                return await self.keyed.setup(request, request.body, peer, conn=conn)
            return await self.idis.dispatch(self, request, peer, conn)
        opcode = request.header.opcode
        if udp and opcode in ADMIN_OPCODES:
            # our HS_SITE publishes UDP as query-only, as HSJ's setup does, and HSJ refuses
            # administration there (``Interface.canProcessMsg``): an answer's challenge and
            # the write it authorises belong on a connection (docs/compatibility.md)
            raise ProtocolError(NOT_AN_ADMIN_INTERFACE)
        keyed = self.keyed.verify(request, peer)  # a keyed session's request, MAC checked
        if opcode == OpCode.CHALLENGE_RESPONSE:
            return await self._answer_challenge(request, peer, udp)
        if keyed is not None:
            return await self.keyed.dispatch(self, request, keyed, peer)
        session_id = request.envelope.session_id
        if opcode == OpCode.SESSION_TERMINATE:
            self.sessions.terminate(session_id, peer)
            return self._respond(request, bodies.EmptyResponse())
        who = self.sessions.identity(session_id, peer) if session_id else None
        try:
            return await self.execute(request, who, peer)
        except AuthenticationNeeded:
            if who is not None:
                raise
            return self._challenge(request, peer)

    def _challenge(self, request: Message, peer: str, challenge_id: int | None = None) -> Message:
        """A 402 whose envelope session id files the request until the answer arrives: a
        fresh id, or the keyed session's own (HSJ ``createChallenge`` in a valid session)."""
        digest = request_digest_of(request, reply_version(request.envelope))
        while challenge_id is None or (
            not request.envelope.session_id and self.sessions.table.exists(challenge_id)
        ):  # a fresh id never names a live session: its answer would be sealed for it
            challenge_id = random_id(self.random_bytes)
        nonce = self.pending.challenge(request, digest, peer, challenge_id)
        challenge = make_challenge(
            request, nonce, site_serial=self.node.site_serial, expiration=self._expiration()
        )
        challenge.envelope = replace(challenge.envelope, session_id=challenge_id)
        return challenge

    async def _answer_challenge(self, answer: Message, peer: str, udp: bool = False) -> Message:
        body = answer.body
        if not isinstance(body, bodies.ChallengeAnswerRequest):
            raise InvalidCredential("not a challenge answer")
        host, named = peer_host(peer), f"{body.key_index}:{body.key_handle}"
        if not self.limits.may_try_auth(host, named, udp=udp):
            raise IdnodeError(
                "too many failed authentication attempts for this identity",
                code=ResponseCode.SERVER_BUSY,
            )
        try:
            pending = self.pending.take(answer.envelope.session_id, peer)  # 405 if none
        except IdnodeError:
            self.limits.auth_failed(host, named, udp=udp)  # a replayed or stray answer
            raise
        original: Message = pending.request.request  # type: ignore[union-attr]
        try:
            who = await verify_answer(self.node.store, self.node.homed, body, pending)
            self.keyed.authenticated(original, who, peer)  # a keyed session becomes who's
            log.info("authenticated %s from %s", who, peer)
            response = await self.execute(original, who, peer)
        except IdnodeError as exc:  # failures answer the original request, as HSJ does
            if isinstance(exc, AuthenticationFailed | InvalidCredential | UnableToAuthenticate):
                self.limits.auth_failed(host, named, udp=udp)  # a failed proof: charge it
            response = make_error(original.envelope, original.header, exc.code, str(exc))
        response.envelope = replace(response.envelope, request_id=answer.envelope.request_id)
        return response

    # -- what is asked ---------------------------------------------------------------------
    async def execute(self, request: Message, who: Identity | None, peer: str = "") -> Message:
        """Run one operation as ``who`` through the node's services."""
        body, opcode, flags = request.body, request.header.opcode, request.header.flags
        admin = self.node.admin
        match body:
            case bodies.ResolutionRequest() if opcode == OpCode.RESOLUTION:
                return await self._resolve(request, body, who, peer_host(peer))
            case _ if opcode == OpCode.GET_SITEINFO:
                return self._respond(request, bodies.SiteInfoResponse(self.node.site))
            case bodies.CreateHandleRequest():
                handle = await admin.create_handle(
                    who,
                    body.handle,
                    body.values,
                    overwrite=bool(flags & _OW),
                    mint=bool(flags & _MINT),
                )
                return self._respond(request, bodies.CreateHandleResponse(handle))
            case bodies.DeleteHandleRequest():
                await admin.delete_handle(who, body.handle)
            case bodies.AddValueRequest():
                await admin.add_values(who, body.handle, body.values, overwrite=bool(flags & _OW))
            case bodies.RemoveValueRequest():
                await admin.remove_values(who, body.handle, body.indexes)
            case bodies.ModifyValueRequest():
                await admin.modify_values(who, body.handle, body.values)
            case bodies.ListHandlesRequest():
                _total, handles = await admin.list_handles(who, body.prefix)
                return self._respond(request, bodies.ListHandlesResponse(tuple(handles)))
            case bodies.ListNAsRequest():
                return self._respond(request, await self._list_prefixes(request, body, who))
            case bodies.HomeNARequest():
                await admin.home_prefix(who, _bare_prefix(body.prefix))
            case bodies.UnhomeNARequest():
                await admin.unhome_prefix(who, _bare_prefix(body.prefix))
            case bodies.NextTxnIdRequest():
                source = self._source()
                return self._respond(request, bodies.NextTxnIdResponse(await source.next_txn_id()))
            case (
                bodies.RetrieveTxnRequest()
                | bodies.DumpHandlesRequest()
                | bodies.RetrieveGovernanceRequest()
            ):
                return self._replication_stream(request, body, who)
            case bodies.SessionSetupRequest() if body.mode in KEYED_MODES:
                return await self.keyed.setup(request, body, peer)  # wire_sessions
            case bodies.SessionSetupRequest():
                return self._setup_session(request, body, who, peer)
            case _:
                return make_error(
                    request.envelope,
                    request.header,
                    ResponseCode.OPERATION_NOT_SUPPORTED,
                    f"operation {opcode} is not supported by this node",
                )
        return self._respond(request, bodies.EmptyResponse())

    def _source(self) -> ReplicationSource:
        source = self.node.replication
        if source is None:
            raise OperationNotSupported("this node serves no replication")
        return source

    def _replication_stream(
        self, request: Message, body: bodies.Body, who: Identity | None
    ) -> Message:
        """The answer to 1001/1002 with the stream that follows it (``answer_messages``)."""
        source = self._source()
        refusal = source.refusal()
        if refusal is not None:  # before authentication, as HSJ answers on a mirror
            raise NotPrimary(refusal)
        source.authorize(who)  # a challenge first when anonymous (``dispatch``)
        if isinstance(body, bodies.RetrieveTxnRequest | bodies.DumpHandlesRequest):
            share_of(body)  # a receiver's place that is no place in a site: refused here
        if isinstance(body, bodies.RetrieveTxnRequest):
            response = self._respond(request, bodies.RetrieveTxnResponse())
            response.stream = source.transactions(body)
        elif isinstance(body, bodies.RetrieveGovernanceRequest):  # idnode's extension
            response = self._respond(request, bodies.EmptyResponse())
            response.stream = source.governance(body)
        else:
            assert isinstance(body, bodies.DumpHandlesRequest)
            response = self._respond(request, bodies.EmptyResponse())
            response.stream = source.dump(body)
        return response

    async def _resolve(
        self,
        request: Message,
        body: bodies.ResolutionRequest,
        who: Identity | None,
        client: str = "",
    ) -> Message:
        """The resolver's answer as a Handle message: the flags become the query, the answer
        its response (``service.resolve`` decides; this only translates)."""
        flags = request.header.flags
        query = ResolutionQuery(
            handle=body.handle,
            indexes=tuple(body.indexes),
            types=tuple(body.types),
            public_only=bool(flags & _PO),
            do_not_refer=bool(flags & _DNRF),
            client=client,
        )
        answer = await self.node.resolver.resolve(query, reader=who, recursion=bool(flags & _REC))
        match answer:
            case Values(values=values, expiration=expiration):
                # a recursive answer carries upstream's expiration (already past when stale)
                return make_response(
                    request,
                    bodies.ResolutionResponse(body.handle, values),
                    site_serial=self.node.site_serial,
                    expiration=self._expiration() if expiration is None else expiration,
                )
            case Referral(prefix_handle=prefix_handle, site_values=sites, expiration=expiration):
                return make_response(  # RC 302 SERVICE_REFERRAL: ask the child's service
                    request,
                    bodies.ServiceReferralResponse(prefix_handle, sites),
                    code=ResponseCode.SERVICE_REFERRAL,
                    site_serial=self.node.site_serial,
                    expiration=self._expiration() if expiration is None else expiration,
                )
            case NeedsAuth(reason=reason):
                raise AuthenticationNeeded(reason)  # ``dispatch`` challenges an anonymous client
            case _:
                assert_never(answer)

    async def _list_prefixes(
        self, request: Message, body: bodies.ListNAsRequest, who: Identity | None
    ) -> bodies.ListNAsResponse:
        """106: derived prefixes of one prefix; 302 (HSJ list-homed-NAs): what we home."""
        admin = self.node.admin
        if request.header.opcode == OpCode.LIST_NAS:
            derived = await admin.list_derived_prefixes(who, _bare_prefix(body.prefix))
            return bodies.ListNAsResponse(tuple(NA_PREFIX + p for p in derived))
        if who is None:
            raise AuthenticationNeeded("authentication needed to list homed prefixes")
        if not admin.is_operator(who):
            raise NotAuthorized(f"{who} is not an operator of this node")
        return bodies.ListNAsResponse(tuple(NA_PREFIX + p for p in self.node.homed))

    def _setup_session(
        self,
        request: Message,
        body: bodies.SessionSetupRequest,
        who: Identity | None,
        peer: str,
    ) -> Message:
        """Our session mode (0): the setup is challenged, and the identity that answered
        gets a session id. HSJ's key-exchange modes (1-4) are ``wire_sessions``'; any other
        mode is 501, as HSJ answers an unrecognized one."""
        if body.mode != SESSION_MODE_IDENTITY:
            raise SessionFailed(f"unrecognized key exchange mode {body.mode}")
        try:
            claimed = Identity(body.identity_handle, body.identity_index)
        except IdnodeError:
            raise SessionFailed("a session needs an identity index:handle") from None
        if who is None:
            raise AuthenticationNeeded("authenticate to set up a session")
        if who != claimed:
            raise SessionFailed(f"authenticated as {who}, but the session is for {claimed}")
        session_id = self.sessions.create(who, peer)
        response = self._respond(request, bodies.SessionSetupResponse(body.mode, b""))
        response.envelope = replace(response.envelope, session_id=session_id)
        return response


def split_listing(response: Message, per_message: int = LIST_HANDLES_PER_MSG) -> list[Message]:
    """A successful listing as HSJ streams it: pieces of ``per_message`` names, CN on all
    but the last. Anything else is returned as is."""
    body = response.body
    if response.header.response_code != ResponseCode.SUCCESS:
        return [response]
    if isinstance(body, bodies.ListHandlesResponse):
        names, make = body.handles, bodies.ListHandlesResponse
    elif isinstance(body, bodies.ListNAsResponse):
        names, make = body.prefixes, bodies.ListNAsResponse  # type: ignore[assignment]
    else:
        return [response]
    if len(names) <= per_message:
        return [response]
    pieces = [names[i : i + per_message] for i in range(0, len(names), per_message)]
    out = []
    for n, piece in enumerate(pieces):
        flags = response.header.flags | _CN if n < len(pieces) - 1 else response.header.flags
        header = replace(response.header, flags=flags)
        out.append(replace(response, header=header, body=make(tuple(piece))))
    return out


def _error_with_digest(request: Message, code: int, text: str) -> Message:
    """An error answer carrying the request digest when the request set RD, as HSJ's error
    responses do: a client checking signed answers can then tie the error to its request."""
    error = make_error(request.envelope, request.header, code, text)
    if request.header.flags & OpFlag.RD:
        error.request_digest = request_digest_of(request, reply_version(request.envelope))
    return error


def _bare_prefix(prefix: str) -> str:
    """``0.NA/20.500`` or ``20.500`` -> ``20.500``; any other handle is not a prefix (HSJ)."""
    if "/" not in prefix:
        return prefix
    if handle_key(prefix).startswith(NA_PREFIX.upper()) and len(prefix) > len(NA_PREFIX):
        return prefix[len(NA_PREFIX) :]
    raise InvalidHandle(f"{prefix!r} is not a prefix handle (0.NA/...)")


def _header_or_none(payload: bytes):
    if len(payload) < HEADER_SIZE:
        return None
    try:
        return decode_header(payload[:HEADER_SIZE])
    except MalformedMessage:
        return None
