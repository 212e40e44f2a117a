"""The mirror's side of the replication protocol: ask, authenticate, read the signed stream.

``next_txn_id`` asks OC_GET_NEXT_TXN_ID (1000); ``stream`` sends OC_RETRIEVE_TXN_LOG (1001)
or OC_DUMP_HANDLES (1002) with the certify flag, answers the server's challenge as the
mirror's identity (``AdminClient.answer_for``: the challenge must be for our request), and
then yields the raw bytes that follow the answer on the connection until the server closes
it; ``wire.replication.StreamParser`` turns them into records. With ``open_session`` the
client authenticates once and later pulls carry the session id (no challenge, no signature
per round); a session the server no longer knows (a restart, another worker) falls back to
the challenge. ``source_key`` reads the
server's public key from its HS_SITE (GET_SITEINFO), to check the stream's signatures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from idnode.auth.identity import Identity
from idnode.client.admin import AdminClient, AdminError, new_request
from idnode.client.resolve import ClientTimeout, request_tcp, siteinfo_request
from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.crypto.keys import PrivateKey, PublicKey
from idnode.wire import bodies
from idnode.wire.envelope import ENVELOPE_SIZE, decode_envelope
from idnode.wire.message import Message, decode_message, encode_message
from idnode.wire.site import decode_site

READ = 1 << 16
_LOST_SESSION = frozenset({ResponseCode.SESSION_TIMEOUT, ResponseCode.SESSION_FAILED})


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


class ReplicationClient:
    """Pulls from one server as one identity."""

    def __init__(
        self,
        host: str,
        port: int,
        identity: Identity | str,
        private_key: PrivateKey,
        *,
        timeout: float = 5.0,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._admin = AdminClient(host, port, "tcp", identity, private_key, timeout=timeout)
        self.session_id = 0

    async def open_session(self) -> None:
        """Authenticate once; later ``stream`` calls ride on the session."""
        try:
            self.session_id = await self._admin.open_session()
        finally:
            await self._admin.disconnect()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def next_txn_id(self) -> int:
        request = new_request(OpCode.GET_NEXT_TXN_ID, bodies.NextTxnIdRequest())
        reply = await request_tcp(self.host, self.port, request, timeout=self.timeout)
        if not isinstance(reply.body, bodies.NextTxnIdResponse):
            raise AdminError(_why(reply), code=reply.header.response_code)
        return reply.body.next_txn_id

    async def source_key(self) -> PublicKey:
        reply = await request_tcp(self.host, self.port, siteinfo_request(), timeout=self.timeout)
        if not isinstance(reply.body, bodies.SiteInfoResponse):
            raise AdminError(_why(reply), code=reply.header.response_code)
        servers = decode_site(reply.body.site).servers
        if not servers or not servers[0].public_key:
            raise AdminError("the source's HS_SITE has no server key", code=ResponseCode.ERROR)
        return servers[0].key()

    async def stream(self, opcode: int, body: bodies.Body) -> AsyncIterator[bytes]:
        """The bytes after a successful answer to ``body``; raises ``AdminError`` on a
        refusal (a mirror answers 301, an identity not allowed 400...)."""
        for _ in range(2):  # a second time by challenge when the session was lost
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), self.timeout
                )
            except (OSError, TimeoutError) as exc:
                raise ClientTimeout(f"cannot connect to tcp:{self.address}: {exc}") from None
            try:
                if not await self._ask(reader, writer, opcode, body):
                    continue
                while chunk := await self._chunk(reader):
                    yield chunk
                return
            finally:
                writer.close()

    async def _ask(self, reader, writer, opcode: int, body: bodies.Body) -> bool:
        """Send the request (in our session, or answering the challenge); False when the
        server no longer knows our session."""
        request = new_request(opcode, body, OpFlag.CT, session_id=self.session_id)
        writer.write(encode_message(request))
        reply = await self._read(reader)
        if self.session_id and reply.header.response_code in _LOST_SESSION:
            self.session_id = 0
            return False
        if reply.header.response_code == ResponseCode.AUTHENTICATION_NEEDED:
            writer.write(encode_message(self._admin.answer_for(request, reply)))
            reply = await self._read(reader)
        if reply.header.response_code != ResponseCode.SUCCESS:
            raise AdminError(_why(reply), code=reply.header.response_code)
        return True

    async def _chunk(self, reader: asyncio.StreamReader) -> bytes:
        try:
            return await asyncio.wait_for(reader.read(READ), self.timeout)
        except TimeoutError:
            raise ClientTimeout(f"tcp:{self.address} stalled mid-stream") from None

    async def _read(self, reader: asyncio.StreamReader) -> Message:
        try:
            async with asyncio.timeout(self.timeout):
                head = await reader.readexactly(ENVELOPE_SIZE)
                envelope = decode_envelope(head)
                payload = await reader.readexactly(envelope.message_length)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ClientTimeout(f"no answer from tcp:{self.address}: {exc!r}") from None
        return decode_message(envelope, payload)


def _why(reply: Message) -> str:
    code = reply.header.response_code
    text = getattr(reply.body, "message", "") or "refused"
    return f"{text} (response code {code})"
