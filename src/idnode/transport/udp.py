"""The Handle protocol over UDP: datagrams in, reassembled requests, datagrams out."""

from __future__ import annotations

import asyncio
import logging
import time

from idnode.errors import MalformedMessage
from idnode.transport.wire_handler import WireHandler
from idnode.wire.envelope import ENVELOPE_SIZE, decode_envelope
from idnode.wire.framing import UdpReassembler, split_datagrams

log = logging.getLogger("idnode.udp")

MAX_INFLIGHT = 4096  # requests being answered at once; beyond this, datagrams are dropped


class HandleUDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: WireHandler, clock=time.monotonic) -> None:
        self.handler = handler
        self.clock = clock
        self.reassembler = UdpReassembler()
        self.transport: asyncio.DatagramTransport | None = None
        self.inflight: set[asyncio.Task] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr) -> None:
        if len(self.inflight) >= MAX_INFLIGHT:
            return  # shed load: the client retries
        try:
            frame = self.reassembler.feed(data, self.clock(), peer=addr)
        except MalformedMessage as exc:
            log.debug("bad datagram from %s: %s", addr, exc)
            if len(data) >= ENVELOPE_SIZE:
                self._spawn(decode_envelope(data[:ENVELOPE_SIZE]), data[ENVELOPE_SIZE:], addr)
            return
        if frame is not None:
            self._spawn(frame[0], frame[1], addr)

    def _spawn(self, envelope, payload: bytes, addr) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(envelope, payload, addr))
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    async def _answer(self, envelope, payload: bytes, addr) -> None:
        response = await self.handler.answer(envelope, payload, peer=f"{addr[0]}:{addr[1]}")
        if response is None or self.transport is None or self.transport.is_closing():
            return
        resp_env = decode_envelope(response[:ENVELOPE_SIZE])
        for datagram in split_datagrams(resp_env, response[ENVELOPE_SIZE:]):
            self.transport.sendto(datagram, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


async def serve_udp(handler: WireHandler, host: str, port: int, *, reuse_port: bool = False):
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: HandleUDPProtocol(handler), local_addr=(host, port), reuse_port=reuse_port or None
    )
    return transport, protocol
