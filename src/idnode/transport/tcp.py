"""The Handle protocol over TCP: a byte stream of enveloped messages, answered in order."""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module

from idnode.errors import MalformedMessage
from idnode.transport.wire_handler import WireHandler
from idnode.wire.framing import TcpFramer

log = logging.getLogger("idnode.tcp")

IDLE_TIMEOUT = 60.0  # seconds a connection may sit without a complete request


class ConnectionCount:
    """Open connections per client host, so one host cannot hold every socket we have."""

    def __init__(self) -> None:
        self.by_host: dict[str, int] = {}

    def acquire(self, host: str, maximum: int) -> bool:
        count = self.by_host.get(host, 0)
        if maximum > 0 and count >= maximum:
            return False
        self.by_host[host] = count + 1
        return True

    def release(self, host: str) -> None:
        count = self.by_host.get(host, 0) - 1
        if count > 0:
            self.by_host[host] = count
        else:
            self.by_host.pop(host, None)


class HandleTCPProtocol(asyncio.Protocol):
    """One connection. Requests are queued and answered one at a time, in arrival order."""

    def __init__(
        self,
        handler: WireHandler,
        idle_timeout: float = IDLE_TIMEOUT,
        *,
        read_deadline: float | None = None,
        connections: ConnectionCount | None = None,
    ) -> None:
        self.handler = handler
        # slowloris: a message begun must be complete within this many seconds
        self.read_deadline = read_deadline or handler.limits.tcp_read_deadline
        self.read_handle: asyncio.TimerHandle | None = None
        self.connections = connections
        self.host: str | None = None  # set while this connection is counted
        self.framer = TcpFramer()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.transport: asyncio.Transport | None = None
        self.worker: asyncio.Task | None = None
        self.peer = ""
        self.idle_timeout = idle_timeout
        self.idle_handle: asyncio.TimerHandle | None = None
        self.last_request = 0.0  # loop time of the last complete request (idle watchdog)
        self.answering = False  # the worker is computing an answer: later ones must wait
        self.host_ip = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        self.host_ip = str(peer[0])
        limits = self.handler.limits
        if self.connections is not None and not limits.is_exempt(str(peer[0])):
            if not self.connections.acquire(str(peer[0]), limits.tcp_max_connections_per_ip):
                log.info("refusing %s: too many connections from that host", self.peer)
                transport.close()
                return
            self.host = str(peer[0])
        loop = asyncio.get_running_loop()
        self.worker = loop.create_task(self._serve())
        self.last_request = loop.time()
        self.idle_handle = loop.call_at(self.last_request + self.idle_timeout, self._idle_check)

    def _idle_check(self) -> None:
        """One timer per connection, moved on lazily: requests only note their time."""
        loop = asyncio.get_running_loop()
        due = self.last_request + self.idle_timeout
        if loop.time() >= due:
            self._close()
        else:
            self.idle_handle = loop.call_at(due, self._idle_check)

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.framer.feed(data)
        except MalformedMessage as exc:
            log.info("closing %s: %s", self.peer, exc)
            self._close()
            return
        handler, transport = self.handler, self.transport
        for frame in frames:
            if not self.answering and self.queue.empty() and transport is not None:
                # nothing before it is unanswered: a cached answer can go out now, in order
                hit = handler.answer_frame_cached(frame[0], frame[1], self.host_ip)
                if hit is not None:
                    transport.write(hit)
                    continue
            self.queue.put_nowait(frame)
        if frames:
            self.last_request = asyncio.get_running_loop().time()
        self._arm_read_deadline(restart=bool(frames))

    def _arm_read_deadline(self, restart: bool) -> None:
        """Start the clock when a message begins; stop it when no partial message is held."""
        if self.framer.buffered == 0 or restart:
            if self.read_handle is not None:
                self.read_handle.cancel()
                self.read_handle = None
        if self.framer.buffered and self.read_handle is None and self.read_deadline > 0:
            loop = asyncio.get_running_loop()
            self.read_handle = loop.call_later(self.read_deadline, self._too_slow)

    def _too_slow(self) -> None:
        log.info("closing %s: message not complete within %ss", self.peer, self.read_deadline)
        self._close()

    def eof_received(self) -> bool:
        self.queue.put_nowait(None)  # finish queued answers, then close
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle_handle is not None:
            self.idle_handle.cancel()
        if self.read_handle is not None:
            self.read_handle.cancel()
        if self.connections is not None and self.host is not None:
            self.connections.release(self.host)
            self.host = None
        if self.worker is not None:
            self.worker.cancel()
        self.transport = None

    async def _serve(self) -> None:
        while True:
            frame = await self.queue.get()
            if frame is None:
                self._close()
                return
            envelope, payload = frame
            self.answering = True
            try:
                # a long listing arrives as several messages chained with the CN flag
                responses = await self.handler.answer_messages(envelope, payload, peer=self.peer)
            finally:
                self.answering = self.queue.qsize() > 0
            if self.transport is None:
                return
            for response in responses:
                self.transport.write(response)


async def serve_tcp(
    handler: WireHandler,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    ssl: ssl_module.SSLContext | None = None,
):
    """A listener; with ``ssl`` the same protocol inside TLS (``[tls] tcp_port``, tls.py)."""
    loop = asyncio.get_running_loop()
    connections = ConnectionCount()  # shared by every connection of this listener
    return await loop.create_server(
        lambda: HandleTCPProtocol(handler, connections=connections),
        host,
        port,
        reuse_port=reuse_port or None,
        ssl=ssl,
    )
