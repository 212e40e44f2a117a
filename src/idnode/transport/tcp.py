"""The Handle protocol over TCP: a byte stream of enveloped messages, answered in order."""

from __future__ import annotations

import asyncio
import logging

from idnode.errors import MalformedMessage
from idnode.transport.wire_handler import WireHandler
from idnode.wire.framing import TcpFramer

log = logging.getLogger("idnode.tcp")

IDLE_TIMEOUT = 60.0  # seconds a connection may sit without a complete request


class HandleTCPProtocol(asyncio.Protocol):
    """One connection. Requests are queued and answered one at a time, in arrival order."""

    def __init__(self, handler: WireHandler, idle_timeout: float = IDLE_TIMEOUT) -> None:
        self.handler = handler
        self.framer = TcpFramer()
        self.queue: asyncio.Queue = asyncio.Queue()
        self.transport: asyncio.Transport | None = None
        self.worker: asyncio.Task | None = None
        self.peer = ""
        self.idle_timeout = idle_timeout
        self.idle_handle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        self.worker = asyncio.get_running_loop().create_task(self._serve())
        self._arm_idle()

    def _arm_idle(self) -> None:
        if self.idle_handle is not None:
            self.idle_handle.cancel()
        loop = asyncio.get_running_loop()
        self.idle_handle = loop.call_later(self.idle_timeout, self._close)

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
        for frame in frames:
            self.queue.put_nowait(frame)
        if frames:
            self._arm_idle()

    def eof_received(self) -> bool:
        self.queue.put_nowait(None)  # finish queued answers, then close
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle_handle is not None:
            self.idle_handle.cancel()
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
            # a long listing arrives as several messages chained with the CN flag
            responses = await self.handler.answer_messages(envelope, payload, peer=self.peer)
            if self.transport is None:
                return
            for response in responses:
                self.transport.write(response)


async def serve_tcp(handler: WireHandler, host: str, port: int, *, reuse_port: bool = False):
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: HandleTCPProtocol(handler), host, port, reuse_port=reuse_port or None
    )
