"""Raw send and receive over UDP, TCP and HTTP, with timeouts, recording every exchange.

The suite must be able to send bytes no client library would (truncated headers, absurd
lengths, unknown opcodes), so probes take bytes or ``Message`` objects and return what came
back undecoded as well as decoded. Every exchange is appended to ``log`` so a failing check
can say exactly what it sent and what it got.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx

from idnode.errors import IdnodeError
from idnode.runtime import Clock
from idnode.verify.conformance.describe import describe, hexdump
from idnode.wire.envelope import ENVELOPE_SIZE, Envelope, decode_envelope
from idnode.wire.framing import TcpFramer, UdpReassembler, split_datagrams
from idnode.wire.message import Message, decode_message, encode_message, encode_payload


class ProbeError(Exception):
    """The target gave no usable answer; the message says which endpoint and why."""


class NoAnswer(ProbeError):
    pass


class Unreachable(ProbeError):
    pass


class Garbage(ProbeError):
    """Bytes came back but do not decode as a Handle message."""


@dataclass(slots=True)
class Exchange:
    channel: str
    sent: str
    received: str = "nothing"


@dataclass(slots=True)
class Reply:
    """One answer: its raw datagrams or frame, the reassembled payload and the decoding."""

    envelope: Envelope
    payload: bytes
    raw: list[bytes] = field(default_factory=list)
    elapsed: float = 0.0
    message: Message | None = None
    error: str = ""

    def decoded(self) -> Message:
        if self.message is None:
            raise Garbage(f"answer does not decode as a Handle message: {self.error}")
        return self.message


def _decode(envelope: Envelope, payload: bytes) -> tuple[Message | None, str]:
    try:
        return decode_message(envelope, payload), ""
    except (IdnodeError, ValueError) as exc:
        return None, f"{exc} ({hexdump(payload)})"


def _reply_text(reply: Reply) -> str:
    if reply.message is not None:
        return describe(reply.message)
    return f"undecodable answer: {reply.error}"


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | Exception] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        self.queue.put_nowait(exc)


class Probe:
    """Talks to one target. ``timeout`` bounds every wait for an answer; ``clock`` (the
    caller's) times each answer and reassembles split ones."""

    def __init__(
        self,
        udp: tuple[str, int] | None,
        tcp: tuple[str, int] | None,
        http: str | None,
        timeout: float = 2.0,
        *,
        clock: Clock,
    ) -> None:
        self.udp_addr, self.tcp_addr, self.http_url = udp, tcp, http
        self.timeout = timeout
        self.clock = clock
        self.log: list[Exchange] = []
        self._refused: dict[str, str] = {}

    # -- UDP --------------------------------------------------------------------------------
    @property
    def udp_name(self) -> str:
        return f"udp:{self.udp_addr[0]}:{self.udp_addr[1]}" if self.udp_addr else "udp:-"

    @property
    def tcp_name(self) -> str:
        return f"tcp:{self.tcp_addr[0]}:{self.tcp_addr[1]}" if self.tcp_addr else "tcp:-"

    def _fast_fail(self, name: str) -> None:
        if name in self._refused:
            raise Unreachable(self._refused[name])

    async def udp_send(
        self, datagrams: list[bytes], note: str, *, timeout: float | None = None
    ) -> Reply:
        """Send datagrams, return the first complete (reassembled) answer."""
        assert self.udp_addr is not None, "no UDP endpoint"
        self._fast_fail(self.udp_name)
        entry = Exchange(self.udp_name, note)
        self.log.append(entry)
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            _Datagrams, remote_addr=self.udp_addr
        )
        reassembler = UdpReassembler()
        raw: list[bytes] = []
        start = self.clock.monotonic()
        wait = self.timeout if timeout is None else timeout
        try:
            for d in datagrams:
                transport.sendto(d)
            async with asyncio.timeout(wait):
                while True:
                    item = await proto.queue.get()
                    if isinstance(item, Exception):
                        msg = f"{self.udp_name} refused the datagram ({item}); is it running?"
                        self._refused[self.udp_name] = msg
                        entry.received = "ICMP port unreachable"
                        raise Unreachable(msg)
                    raw.append(item)
                    if len(item) < ENVELOPE_SIZE:
                        entry.received = f"runt datagram {hexdump(item)}"
                        raise Garbage(f"{len(item)}-byte datagram, shorter than an envelope")
                    try:
                        frame = reassembler.feed(item, self.clock.monotonic())
                    except IdnodeError as exc:
                        entry.received = f"bad datagram {hexdump(item)}"
                        raise Garbage(f"datagram does not frame: {exc}") from None
                    if frame is not None:
                        break
        except TimeoutError:
            got = f"{len(raw)} incomplete datagram(s)" if raw else "nothing"
            entry.received = got
            raise NoAnswer(f"no complete answer from {self.udp_name} within {wait}s") from None
        finally:
            transport.close()
        env, payload = frame
        message, error = _decode(env, payload)
        reply = Reply(env, payload, raw, self.clock.monotonic() - start, message, error)
        entry.received = _reply_text(reply)
        return reply

    async def udp(self, msg: Message, *, timeout: float | None = None) -> Reply:
        """Send a message (split as HSJ splits it) and return the answer."""
        datagrams = split_datagrams(msg.envelope, encode_payload(msg))
        return await self.udp_send(datagrams, describe(msg), timeout=timeout)

    async def udp_silence(self, datagrams: list[bytes], note: str, wait: float) -> list[bytes]:
        """Send and collect whatever arrives within ``wait`` (for "must not answer" checks)."""
        assert self.udp_addr is not None, "no UDP endpoint"
        self._fast_fail(self.udp_name)
        entry = Exchange(self.udp_name, note)
        self.log.append(entry)
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            _Datagrams, remote_addr=self.udp_addr
        )
        got: list[bytes] = []
        try:
            for d in datagrams:
                transport.sendto(d)
            await asyncio.sleep(wait)
        finally:
            transport.close()
        while not proto.queue.empty():
            item = proto.queue.get_nowait()
            if isinstance(item, bytes):
                got.append(item)
        entry.received = f"{len(got)} datagram(s)" + (f": {hexdump(got[0])}" if got else "")
        return got

    # -- TCP --------------------------------------------------------------------------------
    async def tcp(self, msg: Message, *, timeout: float | None = None) -> Reply:
        async with self.tcp_connection() as conn:
            return (await conn.exchange(encode_message(msg), describe(msg), timeout=timeout))[0]

    async def tcp_send(self, data: bytes, note: str, *, frames: int = 1) -> list[Reply]:
        async with self.tcp_connection() as conn:
            return await conn.exchange(data, note, frames=frames)

    def tcp_connection(self) -> TcpConnection:
        assert self.tcp_addr is not None, "no TCP endpoint"
        return TcpConnection(self, self.tcp_addr, self.tcp_name)

    # -- HTTP -------------------------------------------------------------------------------
    async def http(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        assert self.http_url is not None, "no HTTP endpoint"
        base = self.http_url.rstrip("/")
        self._fast_fail(base)
        query = "&".join(f"{k}={v}" for k, v in params or [])
        entry = Exchange("http", f"{method} {path}" + (f"?{query}" if query else ""))
        if headers and "Authorization" in headers:
            entry.sent += " (with Authorization)"
        self.log.append(entry)
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                resp = await client.request(
                    method, base + path, params=params, headers=headers, content=content
                )
        except httpx.ConnectError as exc:
            msg = f"cannot connect to {base}: {exc}"
            self._refused[base] = msg
            raise Unreachable(msg) from None
        except httpx.TimeoutException:
            raise NoAnswer(f"no answer from {base} within {self.timeout}s") from None
        except httpx.HTTPError as exc:
            raise Garbage(f"{base} answered something that is not HTTP: {exc}") from None
        entry.received = f"HTTP {resp.status_code} {resp.text[:200]!r}"
        return resp

    def last(self, n: int = 2) -> list[Exchange]:
        return self.log[-n:]


class TcpConnection:
    """One TCP connection for several exchanges (challenge answers, streamed listings).

    RFC 3652 does not require a server to keep a connection open after an answer, and
    HANDLE.NET closes it after every request (its challenges are filed by session id, not
    by connection). So when the server has closed the connection after answering, the next
    exchange opens a new one, as HSJ and ``idnode admin`` do; a server that closes without
    answering the request at hand still fails.
    """

    def __init__(self, probe: Probe, addr: tuple[str, int], name: str) -> None:
        self.probe, self.addr, self.name = probe, addr, name
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.framer = TcpFramer()
        self.pending: list[tuple[Envelope, bytes, bytes]] = []
        self.answered = 0  # exchanges completed on this object (over any connection)

    async def _reopen(self) -> None:
        """A new connection after the server closed the last one (nothing was pending)."""
        await self.__aexit__()
        self.framer, self.pending = TcpFramer(), []
        await self.__aenter__()

    async def __aenter__(self) -> TcpConnection:
        self.probe._fast_fail(self.name)
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(*self.addr), self.probe.timeout
            )
        except (OSError, TimeoutError) as exc:
            msg = f"cannot connect to {self.name}: {exc or type(exc).__name__}"
            if isinstance(exc, ConnectionRefusedError):
                self.probe._refused[self.name] = msg
            raise Unreachable(msg) from None
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass

    async def send(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def exchange(
        self, data: bytes, note: str, *, frames: int = 1, timeout: float | None = None
    ) -> list[Reply]:
        """Send bytes, read ``frames`` answers (a CN-continued listing reads on until done)."""
        if self.answered and not self.pending and self.reader is not None:
            if self.reader.at_eof():  # closed after its last answer: HANDLE.NET's way
                await self._reopen()
            else:
                try:
                    return await self._exchange(data, note, frames, timeout)
                except (NoAnswer, Unreachable) as exc:
                    closed = self.reader is not None and self.reader.at_eof()
                    if isinstance(exc, NoAnswer) and not closed:
                        raise  # silent, not closed: a real failure
                    await self._reopen()  # closed (or reset) as we wrote: ask on a new one
        return await self._exchange(data, note, frames, timeout)

    async def _exchange(
        self, data: bytes, note: str, frames: int, timeout: float | None
    ) -> list[Reply]:
        entry = Exchange(self.name, note)
        self.probe.log.append(entry)
        monotonic = self.probe.clock.monotonic
        start = monotonic()
        try:
            await self.send(data)
        except OSError as exc:
            raise Unreachable(f"{self.name} dropped the connection: {exc}") from None
        out: list[Reply] = []
        wait = self.probe.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(wait):
                while len(out) < frames:
                    env, payload, raw = await self._frame(entry)
                    message, error = _decode(env, payload)
                    out.append(Reply(env, payload, [raw], monotonic() - start, message, error))
        except TimeoutError:
            entry.received = f"{len(out)} of {frames} answer(s)" if out else "nothing"
            raise NoAnswer(f"no answer from {self.name} within {wait}s") from None
        entry.received = "; ".join(_reply_text(r) for r in out)
        self.answered += 1
        return out

    async def more(self, note: str, *, timeout: float | None = None) -> list[Reply]:
        """One more answer on this connection without sending anything (NoAnswer when the
        server closes it or stays silent): for pipelined requests sent together."""
        return await self._exchange(b"", note, 1, timeout)

    async def closed_or_silent(self, wait: float) -> bytes:
        """Bytes that arrive within ``wait`` before EOF (b"" when closed or silent)."""
        assert self.reader is not None
        try:
            return await asyncio.wait_for(self.reader.read(65536), wait)
        except (TimeoutError, OSError):
            return b""

    async def _frame(self, entry: Exchange) -> tuple[Envelope, bytes, bytes]:
        assert self.reader is not None
        while not self.pending:
            try:
                chunk = await self.reader.read(65536)
            except OSError as exc:
                entry.received = f"connection error {exc}"
                raise Unreachable(f"{self.name} reset the connection: {exc}") from None
            if not chunk:
                entry.received = "connection closed"
                raise NoAnswer(f"{self.name} closed the connection without an answer")
            try:
                for env, payload in self.framer.feed(chunk):
                    raw = b""  # the frame bytes are rebuilt on demand; payload is what counts
                    self.pending.append((env, payload, raw))
            except IdnodeError as exc:
                entry.received = f"bad frame {hexdump(chunk)}"
                raise Garbage(f"{self.name} sent bytes that do not frame: {exc}") from None
        return self.pending.pop(0)


def parse_hostport(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``host:port`` or ``:port`` or ``[v6]:port``; raises ValueError with a usable message."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port, got {text!r}")
    return (host.strip("[]") or default_host), int(port)


def decode_envelope_safe(data: bytes) -> Envelope | None:
    try:
        return decode_envelope(data)
    except IdnodeError:
        return None
