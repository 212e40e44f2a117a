"""An authenticating Handle client for administration, over TCP or UDP.

It does what HSJ's ``HandleResolver`` does for an admin request: send it, and if the server
answers 402 with a challenge, check that the challenge's digest is the digest of *our*
request (so we never sign someone else's), sign or MAC ``nonce || digest`` with the key of
our identity, and send a ChallengeAnswerRequest carrying the challenge's envelope session id.
Over TCP the answer goes on the same connection -- or on a new one when the server closed it,
as HANDLE.NET servers close a TCP connection after each answer; over UDP in a new datagram.

Administration never goes over UDP: a Handle site publishes its UDP interface as query-only
and HANDLE.NET servers (idnode too) refuse admin requests there, so with ``protocol="udp"``
queries, session setup and challenge answers to queries use UDP and the operations that need
an admin interface (``wire.site.ADMIN_OPCODES``) use TCP on the same address, the interface
HSJ's resolver picks for them.

With ``open_session`` the client authenticates once (our session mode 0, see
``idnode.transport.wire_auth``) and every later request carries the session id instead of
being challenged: a bulk load pays one signature, not one per record.

``PrimaryWriter`` sends writes where RFC 3652 §3.3 says they go: it reads the prefix's
HS_SITE values (at any server holding the prefix record, a mirror included), and asks the
primary sites' servers (``client.sites.site_plan(..., write=True)``: the server the handle
hashes to first) in turn, the next when one is silent, never a mirror.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from idnode.auth.answers import make_public_key_answer, make_secret_key_answer
from idnode.auth.identity import Identity
from idnode.client.failover import first_answer, prefix_sites
from idnode.client.resolve import ClientTimeout, request_tcp, request_udp
from idnode.client.sites import site_plan
from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.crypto.keys import PrivateKey
from idnode.errors import IdnodeError
from idnode.model import HS_PUBKEY, HS_SECKEY, NA_PREFIX, HandleValue, handle_key
from idnode.names import prefix_part
from idnode.runtime import ENTROPY, randbits
from idnode.wire import bodies
from idnode.wire.envelope import Envelope, reply_version
from idnode.wire.framing import TcpFramer
from idnode.wire.header import Header
from idnode.wire.message import Message, encode_message, request_digest_of
from idnode.wire.site import ADMIN_OPCODES, SP_HDL_TCP, SiteInfo

DEFAULT_TIMEOUT = 10.0
NO_FLAGS = OpFlag(0)
T = TypeVar("T")


class AdminError(IdnodeError):
    """The server refused an admin request; ``code`` is its Handle response code."""


class ConnectionClosed(ClientTimeout):
    """The server closed the TCP connection (or reset it) before any byte of an answer."""


def new_request(
    opcode: int, body: bodies.Body, flags: OpFlag = NO_FLAGS, *, session_id: int = 0
) -> Message:
    return Message(
        header=Header(opcode=opcode, flags=flags),
        body=body,
        envelope=Envelope(request_id=randbits(ENTROPY, 31), session_id=session_id),
    )


class _TcpConnection:
    """One TCP connection; answers are read frame by frame (a listing may span several)."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.framer = TcpFramer()
        self.frames: list[tuple[Envelope, bytes]] = []
        self.answered = 0  # answers read: a connection that served one may be closed since

    async def open(self) -> None:
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise ClientTimeout(f"cannot connect to tcp:{self.host}:{self.port}: {exc}") from None

    async def send(self, message: Message) -> None:
        if self.writer is None:
            await self.open()
        assert self.writer is not None
        try:
            self.writer.write(encode_message(message))
            await self.writer.drain()
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise ConnectionClosed(f"tcp:{self.host}:{self.port} closed: {exc}") from None

    async def receive(self) -> Message:
        from idnode.wire.message import decode_message

        assert self.reader is not None
        try:
            async with asyncio.timeout(self.timeout):
                while not self.frames:
                    try:
                        chunk = await self.reader.read(65536)
                    except ConnectionResetError:
                        chunk = b""
                    if not chunk:
                        closed = f"tcp:{self.host}:{self.port} closed the connection"
                        if self.framer.buffered:
                            raise ClientTimeout(closed + " in the middle of an answer")
                        raise ConnectionClosed(closed)
                    self.frames.extend(self.framer.feed(chunk))
        except TimeoutError:
            raise ClientTimeout(f"no answer from tcp:{self.host}:{self.port}") from None
        self.answered += 1
        return decode_message(*self.frames.pop(0))

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.writer = self.reader = None


class AdminClient:
    """Administration of one Handle server as one identity.

    Use as ``async with AdminClient(...) as c:``. ``identity`` is ``Identity`` or the text
    ``"300:0.NA/20.500"``; give ``private_key`` (HS_PUBKEY identities) or ``secret``
    (HS_SECKEY identities). ``secret_alg`` is the answer kind (``"HMAC-SHA256"``,
    ``"SHA256"``, ``"SHA1"``, ``"PBKDF2-HMAC-SHA1"``...); ``pbkdf2`` passes the stored
    (salt, iterations, bits) when the server keeps the secret in PBKDF2 form.
    """

    def __init__(
        self,
        host: str,
        port: int,
        protocol: str = "tcp",
        identity: Identity | str | None = None,
        private_key: PrivateKey | None = None,
        secret: bytes | str | None = None,
        *,
        secret_alg: str = "HMAC-SHA256",
        pbkdf2: tuple[bytes, int, int] | None = None,
        hash_name: str = "SHA256",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if protocol not in ("tcp", "udp"):
            raise ValueError(f"protocol must be tcp or udp, not {protocol!r}")
        if isinstance(identity, str):
            identity = Identity.parse(identity)
        if identity is not None and (private_key is None) == (secret is None):
            raise ValueError("give exactly one of private_key and secret for the identity")
        self.host, self.port, self.protocol = host, port, protocol
        self.identity = identity
        self.private_key = private_key
        self.secret = secret
        self.secret_alg = secret_alg
        self.pbkdf2 = pbkdf2
        self.hash_name = hash_name
        self.timeout = timeout
        self.session_id = 0
        self._tcp: _TcpConnection | None = None

    async def __aenter__(self) -> AdminClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """End the session (if any) and the connection."""
        if self.session_id:
            try:
                await self.exchange(
                    new_request(OpCode.SESSION_TERMINATE, bodies.SessionTerminateRequest())
                )
            except IdnodeError:
                pass
            self.session_id = 0
        if self._tcp is not None:
            await self._tcp.close()
            self._tcp = None

    async def disconnect(self) -> None:
        """Close the connection but keep the session: a later connection from this host may
        carry its id (``ReplicationClient`` pulls on a new connection each round)."""
        if self._tcp is not None:
            await self._tcp.close()
            self._tcp = None

    # -- transport ------------------------------------------------------------------------
    def _over_udp(self, request: Message) -> bool:
        """Whether ``request`` (or the request a challenge answer answers) goes over UDP."""
        return self.protocol == "udp" and request.header.opcode not in ADMIN_OPCODES

    async def _roundtrip(self, message: Message, *, udp: bool | None = None) -> list[Message]:
        """Send one message and read its answer: every part of a CN-continued listing.

        ``udp``: the transport (default: UDP if the client's protocol is UDP and the message
        is no admin operation)."""
        if self._over_udp(message) if udp is None else udp:
            return [await request_udp(self.host, self.port, message, timeout=self.timeout)]
        for _ in range(2):
            if self._tcp is None:
                self._tcp = _TcpConnection(self.host, self.port, self.timeout)
            connection = self._tcp
            try:
                await connection.send(message)
                parts = [await connection.receive()]
            except ConnectionClosed:
                await connection.close()
                self._tcp = None
                if connection.answered:
                    # it served an answer and was closed since (HANDLE.NET closes after each
                    # answer): the message was never read, so send it on a new connection
                    continue
                raise
            while parts[-1].header.flags & OpFlag.CN and parts[-1].is_response:
                parts.append(await connection.receive())
            return parts
        raise ConnectionClosed(f"tcp:{self.host}:{self.port} closed a new connection too")

    # -- authentication -------------------------------------------------------------------
    async def exchange(self, request: Message) -> list[Message]:
        """Send ``request`` (in our session, if any), answering a challenge; all replies."""
        if self.session_id and request.envelope.session_id == 0:
            request.envelope = replace(request.envelope, session_id=self.session_id)
        replies = await self._roundtrip(request)
        first = replies[0]
        if first.header.response_code != ResponseCode.AUTHENTICATION_NEEDED:
            return replies
        if self.identity is None:
            raise AdminError(
                "the server wants authentication; give an identity and a key",
                code=ResponseCode.AUTHENTICATION_NEEDED,
            )
        answer = self.answer_for(request, first)
        return await self._roundtrip(answer, udp=self._over_udp(request))

    def answer_for(self, request: Message, challenge: Message) -> Message:
        """The ChallengeAnswerRequest to ``challenge``, after checking its digest is ours."""
        body = challenge.body
        if not isinstance(body, bodies.ChallengeResponse):
            raise AdminError("challenge without a body", code=ResponseCode.PROTOCOL_ERROR)
        ours = request_digest_of(request, reply_version(request.envelope))
        if body.digest.algorithm != ours.algorithm:
            ours = bodies.digest_request(_header_body(request), body.digest.algorithm)
        if body.digest.digest != ours.digest:
            raise AdminError(
                "the challenge is not for our request (digest mismatch)",
                code=ResponseCode.AUTHENTICATION_FAILED,
            )
        return self.sign_challenge(request, challenge, body.nonce, body.digest.digest)

    def sign_challenge(
        self, request: Message, challenge: Message, nonce: bytes, digest: bytes
    ) -> Message:
        """Sign ``nonce || digest`` as our identity; the answer reuses the request's id."""
        assert self.identity is not None
        if self.private_key is not None:
            auth_type = HS_PUBKEY
            signature = make_public_key_answer(self.private_key, nonce, digest, self.hash_name)
        else:
            assert self.secret is not None
            auth_type = HS_SECKEY
            extra: dict[str, Any] = {}
            if self.pbkdf2 is not None:
                extra = dict(zip(("salt", "iterations", "key_bits"), self.pbkdf2, strict=True))
            signature = make_secret_key_answer(self.secret, nonce, digest, self.secret_alg, **extra)
        answer_body = bodies.ChallengeAnswerRequest(
            auth_type, self.identity.handle, self.identity.index, signature
        )
        envelope = replace(
            request.envelope, session_id=challenge.envelope.session_id, message_length=0
        )
        return Message(Header(opcode=OpCode.CHALLENGE_RESPONSE), answer_body, envelope)

    async def open_session(self) -> int:
        """Authenticate once; later requests ride on the returned session id."""
        assert self.identity is not None, "a session needs an identity"
        setup = bodies.SessionSetupRequest(
            bodies.KEY_EXCHANGE_NONE, 0, self.identity.handle, self.identity.index
        )
        reply = self._check(await self.exchange(new_request(OpCode.SESSION_SETUP, setup)))[0]
        self.session_id = reply.envelope.session_id
        if not self.session_id:
            raise AdminError("the server returned no session id", code=ResponseCode.SESSION_FAILED)
        return self.session_id

    # -- operations -----------------------------------------------------------------------
    @staticmethod
    def _check(replies: list[Message]) -> list[Message]:
        for reply in replies:
            code = reply.header.response_code
            if code != ResponseCode.SUCCESS:
                text = getattr(reply.body, "message", "") or ResponseCode(code).name.lower()
                raise AdminError(f"{text} (response code {code})", code=code)
        return replies

    async def call(self, opcode: int, body: bodies.Body, flags: OpFlag = NO_FLAGS) -> Message:
        """One admin operation; raises ``AdminError`` unless it succeeded."""
        return self._check(await self.exchange(new_request(opcode, body, flags)))[-1]

    async def create_handle(
        self,
        handle: str,
        values: Sequence[HandleValue],
        *,
        overwrite: bool = False,
        mint: bool = False,
    ) -> str:
        flags = (OpFlag.OW if overwrite else OpFlag(0)) | (OpFlag.MINT if mint else OpFlag(0))
        reply = await self.call(
            OpCode.CREATE_HANDLE, bodies.CreateHandleRequest(handle, tuple(values)), flags
        )
        created = getattr(reply.body, "handle", None)
        return created or handle

    async def delete_handle(self, handle: str) -> None:
        await self.call(OpCode.DELETE_HANDLE, bodies.DeleteHandleRequest(handle))

    async def add_values(
        self, handle: str, values: Sequence[HandleValue], *, overwrite: bool = False
    ) -> None:
        flags = OpFlag.OW if overwrite else OpFlag(0)
        await self.call(OpCode.ADD_VALUE, bodies.AddValueRequest(handle, tuple(values)), flags)

    async def modify_values(self, handle: str, values: Sequence[HandleValue]) -> None:
        await self.call(OpCode.MODIFY_VALUE, bodies.ModifyValueRequest(handle, tuple(values)))

    async def remove_values(self, handle: str, indexes: Sequence[int]) -> None:
        await self.call(OpCode.REMOVE_VALUE, bodies.RemoveValueRequest(handle, tuple(indexes)))

    async def list_handles(self, prefix: str) -> list[str]:
        request = new_request(OpCode.LIST_HANDLES, bodies.ListHandlesRequest(_na(prefix)))
        replies = self._check(await self.exchange(request))
        return [h for r in replies for h in getattr(r.body, "handles", ())]

    async def list_prefixes(self, prefix: str | None = None) -> list[str]:
        """Derived prefixes of ``prefix`` (opcode 106), or every homed prefix (302)."""
        if prefix is None:
            request = new_request(OpCode.LIST_HOMED_NAS, bodies.ListNAsRequest(""))
        else:
            request = new_request(OpCode.LIST_NAS, bodies.ListNAsRequest(_na(prefix)))
        replies = self._check(await self.exchange(request))
        return [p for r in replies for p in getattr(r.body, "prefixes", ())]

    async def home_prefix(self, prefix: str) -> None:
        await self.call(OpCode.HOME_NA, bodies.HomeNARequest(_na(prefix)))

    async def unhome_prefix(self, prefix: str) -> None:
        await self.call(OpCode.UNHOME_NA, bodies.UnhomeNARequest(_na(prefix)))

    async def resolve(self, handle: str, *, indexes: Sequence[int] = ()) -> list[HandleValue]:
        """Resolve without the PO flag: restricted values are challenged for, as in HSJ."""
        body = bodies.ResolutionRequest(handle, tuple(indexes), ())
        reply = await self.call(OpCode.RESOLUTION, body)
        return list(getattr(reply.body, "values", ()))


class NoPrimarySite(IdnodeError):
    """The prefix record lists no primary site with an admin interface: nowhere to write."""


class PrimaryWriter:
    """Writes sent to a server of the prefix's primary site, whatever server was named.

    ``servers`` are where the prefix record ``0.NA/<prefix>`` is read (the first that
    answers; a mirror holds the same record). Each write then goes to the primary sites'
    servers in ``site_plan`` order over TCP (the admin interface; UDP is query-only), the
    next when one does not answer -- a refusal is an answer and ends there. A mirror site
    is never asked: it would refuse the write (301), and a client that wrote to the first
    listed site would hit it whenever the record lists a mirror first.

    ``connect(host, port)`` makes the ``AdminClient`` of one server (same identity each
    time); with ``session`` each server's client authenticates once and is kept for the
    next write (a bulk load). A server that was silent is tried last afterwards, so a load
    does not wait for it on every record; ``on_skip`` hears of a silent server when there is
    a next one to ask. Use as ``async with PrimaryWriter(...) as w:``.
    """

    def __init__(
        self,
        servers: Sequence[tuple[str, int]],
        connect: Callable[[str, int], AdminClient],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        session: bool = False,
        on_skip: Callable[[str, int, Exception], None] = lambda host, port, exc: None,
    ) -> None:
        self.servers = list(servers)
        self.connect, self.timeout, self.session = connect, timeout, session
        self.on_skip = on_skip
        self._sites: dict[str, list[SiteInfo]] = {}
        self._clients: dict[tuple[str, int], AdminClient] = {}
        self._silent: set[tuple[str, int]] = set()

    async def __aenter__(self) -> PrimaryWriter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            await c.close()

    async def plan(self, handle: str) -> list[tuple[str, int]]:
        """The primary servers to ask for ``handle``, in turn (sites read once a prefix)."""
        prefix = handle_key(prefix_part(handle))
        if prefix not in self._sites:
            self._sites[prefix] = await prefix_sites(
                handle, self.servers, request_tcp, timeout=self.timeout
            )
        plan = site_plan(self._sites[prefix], handle, SP_HDL_TCP, write=True)
        if not plan:
            asked = ", ".join(f"{h}:{p}" for h, p in self.servers)
            raise NoPrimarySite(
                f"{NA_PREFIX + prefix_part(handle)} (read at {asked}) lists no primary site "
                "with an admin interface"
            )
        return [a for a in plan if a not in self._silent] + [a for a in plan if a in self._silent]

    async def write(self, handle: str, action: Callable[[AdminClient], Awaitable[T]]) -> T:
        """``action(client)`` on the first primary server of ``handle`` that answers."""
        plan = await self.plan(handle)

        async def ask(host: str, port: int) -> T:
            client = self._clients.get((host, port))
            try:
                if client is None:
                    client = self._clients[(host, port)] = self.connect(host, port)
                    if self.session:
                        await client.open_session()
                result = await action(client)
            except (ClientTimeout, OSError):
                self._clients.pop((host, port), None)
                if client is not None:
                    client.session_id = 0  # nothing to terminate on a silent server
                    await client.disconnect()
                raise
            self._silent.discard((host, port))
            return result

        def skipped(host: str, port: int, exc: Exception) -> None:
            self._silent.add((host, port))
            if (host, port) != plan[-1]:  # there is a next server to ask
                self.on_skip(host, port, exc)

        try:
            return await first_answer(plan, ask, skipped)
        except ClientTimeout as exc:
            why = str(exc).removeprefix("no server answered: ")
            raise ClientTimeout(
                f"no primary server of {NA_PREFIX + prefix_part(handle)} answered (a mirror "
                f"takes no writes): {why}"
            ) from None


def _na(prefix: str) -> str:
    """The prefix handle HSJ sends for a prefix: ``20.500`` -> ``0.NA/20.500``."""
    return prefix if "/" in prefix else NA_PREFIX + prefix


def _header_body(request: Message) -> bytes:
    from idnode.wire.message import encode_header_body

    return request.header_body or encode_header_body(request)
