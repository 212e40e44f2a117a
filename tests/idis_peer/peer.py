"""One SDK connection: what ``transport/TransportOnTcpLogin.java`` does on a pooled channel.

A new channel gets its own session id from ``SessionIdFactoryDefault`` (one counter per JVM,
starting after 10000) and keeps it for life; every request on the channel carries it in its
envelope. Logging in is get-siteinfo, then ``OC_LOGIN_ID_SYSTEM`` (2001) with the request
digest asked for (SHA-256), whose 402 challenge is answered with an ordinary challenge answer
(opcode 200) under the session id the challenge came with; a 2001 answered without a
challenge is a failed login for the SDK. After that the channel counts as authenticated and
every later request is sent on it without credentials.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from tests.idis_peer import codec
from tests.idis_peer.auth import PublicKeyAuth
from tests.idis_peer.codec import Reply, Request, Value

_SESSION_IDS = itertools.count(10001)  # SessionIdFactoryDefault: AtomicInteger(10000)
_REQUEST_IDS = itertools.count(1)
ANSWER_WAIT = 30.0  # a bound that only turns a hang into a failure
REQUEST_EXPIRATION = 1_900_000_000  # the SDK writes now + 12 h; servers ignore it


def next_session_id() -> int:
    return next(_SESSION_IDS)


class LoginFailed(Exception):
    """What ``TransportOnTcpLogin.login`` throws ("登录失败"), with the answer that failed."""

    def __init__(self, reply: Reply, why: str) -> None:
        super().__init__(f"{why}: code {reply.code} {reply.message!r}")
        self.reply = reply


class SdkConnection:
    """A TCP connection with its client-chosen session id."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session_id: int
    ) -> None:
        self.reader, self.writer = reader, writer
        self.session_id = session_id
        self.authenticated = False
        # set once an encrypted session is agreed: bytes -> bytes, both directions
        self.encrypt: Callable[[bytes], bytes] | None = None
        self.decrypt: Callable[[bytes], bytes] | None = None

    @classmethod
    async def open(cls, host: str, port: int, session_id: int | None = None) -> SdkConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, next_session_id() if session_id is None else session_id)

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass

    async def __aenter__(self) -> SdkConnection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- one exchange ---------------------------------------------------------------------
    def request(self, opcode: int, body: bytes, flags: int = codec.DEFAULT_FLAGS) -> Request:
        if self.encrypt is not None:
            flags |= codec.FLAG_ENCR  # writeHeader: msg.encrypt
        return Request(
            opcode,
            body,
            flags,
            session_id=self.session_id,
            request_id=next(_REQUEST_IDS),
            expiration=REQUEST_EXPIRATION,
            credential_field=opcode != codec.OC_LOGIN_ID_SYSTEM,
        )

    async def send(self, request: Request, *, encrypted: bool | None = None) -> Reply:
        """Send one request and read its answer (``encrypted`` defaults to the session's)."""
        seal = self.encrypt if (encrypted is None or encrypted) else None
        self.writer.write(request.encode(seal))
        await self.writer.drain()
        return await asyncio.wait_for(self._read(), ANSWER_WAIT)

    async def send_raw(self, data: bytes) -> Reply:
        self.writer.write(data)
        await self.writer.drain()
        return await asyncio.wait_for(self._read(), ANSWER_WAIT)

    async def _read(self) -> Reply:
        head = await self.reader.readexactly(20)
        env, _ = codec.split_envelope(head)
        message = await self.reader.readexactly(env["length"])
        if env["encrypted"]:
            if self.decrypt is None:
                raise AssertionError("an encrypted answer on a connection without a session key")
            message = self.decrypt(message)  # HandleDecoder.decryptMessage
        return codec.decode_reply(env, message)

    # -- what the SDK client does ---------------------------------------------------------
    async def encrypt_connection(self, auth: PublicKeyAuth) -> Reply:
        """``TransportEncryptHandler.handle``: before the login, a mode-3 session setup under
        the connection's own session id naming the user's key; the answer's data is the SM4
        session key under SM2. Every later request and answer is SM4-CBC encrypted (the
        requests also set the ENC flag, ``request.encrypt``)."""
        from tests.idis_peer.cipher import ENCRYPT_ALG_SM4, Sm4Cbc, session_key

        body = codec.session_setup_cipher_hdl_body(auth.handle, auth.index)
        reply = await self.send(self.request(codec.OC_SESSION_SETUP, body), encrypted=False)
        if reply.code != codec.RC_SUCCESS:
            return reply
        mode, data = codec.decode_session_setup_response(reply.raw_body)
        if mode != 3:
            raise AssertionError(f"Un support keyExchangeMode {mode}")
        algorithm, key = session_key(auth.key, data)  # type: ignore[arg-type]
        if algorithm != ENCRYPT_ALG_SM4:
            raise AssertionError(f"session key algorithm {algorithm}, not SM4")
        cipher = Sm4Cbc(key)
        self.encrypt, self.decrypt = cipher.encrypt, cipher.decrypt
        return reply

    async def get_site_info(self) -> Reply:
        return await self.send(self.request(codec.OC_GET_SITE_INFO, codec.generic_body("/")))

    async def login(self, auth: PublicKeyAuth) -> Reply:
        """``TransportOnTcpLogin.login``; raises ``LoginFailed`` as the SDK would fail."""
        await self.get_site_info()
        flags = codec.FLAG_RECU | codec.FLAG_RRDG  # PO, CA and CT cleared, RD set
        if self.encrypt is not None:
            flags |= codec.FLAG_ENCR  # loginIDSystemRequest.encrypt = isEncryptMessage()
        login = self.request(codec.OC_LOGIN_ID_SYSTEM, codec.login_body(auth.handle, auth.index))
        login.flags = flags
        challenge = await self.send(login)
        if challenge.code == codec.RC_SUCCESS:
            raise LoginFailed(challenge, "login user id error")  # no challenge: refused
        if challenge.code != codec.RC_AUTHENTICATION_NEEDED:
            raise LoginFailed(challenge, "login refused")
        signed = auth.authenticate(challenge, login)
        body = codec.challenge_answer_body(auth.auth_type, auth.handle, auth.index, signed)
        answer = Request(
            codec.OC_RESPONSE_TO_CHALLENGE,
            body,
            flags,
            session_id=challenge.session_id,  # challengeAnswerRequest.sessionId
            request_id=next(_REQUEST_IDS),
            expiration=REQUEST_EXPIRATION,
        )
        reply = await self.send(answer)
        if reply.code not in (codec.RC_SUCCESS, codec.RC_AUTHENTICATION_NEEDED):
            raise LoginFailed(reply, "Response code is not success")  # ResponseUtils
        self.authenticated = True
        return reply

    async def resolve(
        self,
        handle: str,
        types: tuple[str, ...] = (),
        indexes: tuple[int, ...] = (),
        auth_string: str | None = None,
    ) -> Reply:
        """``resolveHandle(handle, types, indexes[, authString])``; with an auth string the
        SDK also sets its recursion-auth flag."""
        body = codec.resolution_body(handle, types, indexes, auth_string)
        request = self.request(codec.OC_RESOLUTION, body)
        if auth_string is not None:
            request.flags |= codec.FLAG_RECU_AUTH
        return await self.send(request)

    async def create(self, handle: str, values: list[Value]) -> Reply:
        return await self.send(
            self.request(codec.OC_CREATE_HANDLE, codec.create_body(handle, values))
        )

    async def delete(self, handle: str) -> Reply:
        return await self.send(self.request(codec.OC_DELETE_HANDLE, codec.delete_body(handle)))
