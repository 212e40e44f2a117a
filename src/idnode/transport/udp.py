"""The Handle protocol over UDP: datagrams in, reassembled requests, datagrams out."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
import sys
import termios
from dataclasses import replace
from typing import Any

from idnode.errors import IdnodeError, MalformedMessage
from idnode.transport.udp_batch import DatagramBatcher
from idnode.transport.udp_fair import FairQueue
from idnode.transport.wire_handler import WireHandler
from idnode.wire import peek
from idnode.wire.envelope import ENVELOPE_SIZE, decode_envelope, encode_envelope
from idnode.wire.framing import UdpReassembler, split_datagrams
from idnode.wire.header import HEADER_SIZE

log = logging.getLogger("idnode.udp")

MAX_INFLIGHT = 4096  # requests being answered at once; beyond this, datagrams are dropped
MAX_DATAGRAM = 512  # Handle.Net's UDP packet size: larger messages are split
# datagrams answered per turn of the event loop, from the fair queue (``udp_fair``): as many
# as uvloop reads in a turn (32), so that a turn's answers leave in one ``sendmmsg`` and wake
# a waiting client once (16 cost 10-15 % of the cached and the store path's throughput,
# docs/performance.md). Under a flood, FAIR_BATCH_BACKLOGGED below: the node then reads
# faster than it answers and sheds the heaviest sources' excess unread-cheaply instead of
# letting the kernel drop blindly
FAIR_BATCH = 32
# requests (not answered from the cache) being answered at once while fair queueing: beyond
# this the datagrams wait in the fair queue, where the heaviest sources are shed first
FAIR_INFLIGHT = 256
# while datagrams arrive faster than the node answers (``_backlogged``), answer only this
# many per turn: reading first is what lets the fair queue, not the kernel's full
# buffer, choose what is dropped
FAIR_BATCH_BACKLOGGED = 4
RECEIVE_BUFFER = 4 * 1024 * 1024  # asked of the kernel (it caps it at net.core.rmem_max)
# Linux's SO_MEMINFO: the socket's memory counters, the first the bytes its unread datagrams
# take (linux/sock_diag.h), about 830 for a small request
SO_MEMINFO = 55
_MEMINFO = struct.Struct("=I")
# unread bytes beyond which the node reads before it answers (``_backlogged``): about 150
# small requests, three turns' reading. A datagram arriving then waits behind these in the
# kernel's queue (first come, first served) before the fair queue can put it first.
BACKLOG_BYTES = 128 * 1024


class HandleUDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, handler: WireHandler) -> None:
        self.handler = handler
        self.clock = handler.clock.monotonic  # reassembly deadlines
        self.reassembler = UdpReassembler()
        self.transport: asyncio.DatagramTransport | None = None
        self.inflight: set[asyncio.Task] = set()
        self.fair = FairQueue() if handler.limits.udp_fair_share else None
        self._draining = False
        self._fd = -1  # the socket, for FIONREAD (fair queueing only)
        self._sock: Any = None  # the socket, for SO_MEMINFO (fair queueing, Linux)
        self.out: DatagramBatcher | None = None  # answers leave together at a turn's end

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.out = DatagramBatcher(transport, asyncio.get_running_loop())
        sock = transport.get_extra_info("socket")
        if sock is not None and self.fair is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            except OSError:
                pass  # the default buffer still works
            self._fd = sock.fileno()
            if sys.platform == "linux":
                self._sock = sock

    def datagram_received(self, data: bytes, addr) -> None:
        if self.fair is None:
            self._handle(data, addr)
            return
        if self.fair.push(addr[0], (data, addr)) and not self._draining:
            self._draining = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        """Answer a bounded batch from the fair queue; come back next turn for the rest."""
        assert self.fair is not None
        batch = FAIR_BATCH_BACKLOGGED if self._backlogged() else FAIR_BATCH
        room = min(batch, FAIR_INFLIGHT - len(self.inflight))
        for data, addr in self.fair.take(room):
            try:
                self._handle(data, addr)
            except Exception:  # one bad datagram must not stall the queue behind it
                log.exception("UDP datagram from %s", addr[0])
        if self.out is not None:
            self.out.flush()  # this batch's answers, in one system call
        if len(self.fair) and len(self.inflight) < FAIR_INFLIGHT:
            asyncio.get_running_loop().call_soon(self._drain)
        else:
            self._draining = False  # empty, or full: a finishing request drains again

    def _backlogged(self) -> bool:
        """Whether datagrams arrive faster than the node answers: the kernel holds more than
        ``BACKLOG_BYTES`` of them unread (Linux, SO_MEMINFO). A few dozen unread datagrams
        (clients with requests in flight at a busy node) are not a flood: answering them
        four a turn cost a system call and a loop turn for every four answers (a tenth of
        the store path's throughput, docs/performance.md). A flood's thousands are: the node
        then reads first, so that a light client's datagram soon reaches the fair queue,
        where it goes first, and what is dropped is the flood's (half of the buffer as the
        bound was tried and is too late: the light client waited behind thousands in the
        kernel's queue, three times as long). Elsewhere: whether any datagram is unread
        (FIONREAD: the size of the next one, 0 when there is none)."""
        try:
            if self._sock is not None:
                (unread,) = _MEMINFO.unpack(
                    self._sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, _MEMINFO.size)
                )
                return unread > BACKLOG_BYTES
            if self._fd < 0:
                return False
            return struct.unpack("i", fcntl.ioctl(self._fd, termios.FIONREAD, b"\0" * 4))[0] > 0
        except (OSError, struct.error):
            return False

    def _done(self, task: asyncio.Task) -> None:
        self.inflight.discard(task)
        if self.fair is not None and len(self.fair) and not self._draining:
            self._draining = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _handle(self, data: bytes, addr) -> None:
        hit = self.handler.answer_datagram_cached(data, addr[0])
        if hit is not None and self.transport is not None:
            # hot path: a cached answer goes out now, without decoding or a task
            self._send_cached(hit, data, addr)
            return
        stored = self.handler.answer_datagram_stored(data, addr[0])
        if stored is not None and self.transport is not None:
            # the store path, read inline: a stored public answer and an envelope, no task
            self._send_cached(stored, data, addr)
            return
        if len(self.inflight) >= MAX_INFLIGHT:
            return  # shed load: the client retries
        try:
            frame = self.reassembler.feed(data, self.clock(), peer=addr)
        except MalformedMessage as exc:
            log.debug("bad datagram from %s: %s", addr, exc)
            if len(data) >= ENVELOPE_SIZE:
                env = decode_envelope(data[:ENVELOPE_SIZE], 1 << 32)
                self._spawn(env, data[ENVELOPE_SIZE:], addr, len(data))
            return
        if frame is not None:
            size = max(len(data), ENVELOPE_SIZE + len(frame[1]))
            whole = size == len(data)  # the request came in this one datagram
            self._spawn(frame[0], frame[1], addr, size, data if whole else None)

    def _spawn(
        self, envelope, payload: bytes, addr, request_size: int, datagram: bytes | None = None
    ) -> None:
        """Answer in a task; ``datagram``: the whole request, when it came in one, so that
        its answer is cached where the hot path (``answer_datagram_cached``) looks."""
        answer = self._answer(envelope, payload, addr, request_size, datagram)
        task = asyncio.get_running_loop().create_task(answer)
        self.inflight.add(task)
        task.add_done_callback(self._done)

    async def _answer(
        self, envelope, payload: bytes, addr, request_size: int, datagram: bytes | None
    ) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        cache = self.handler.cache
        key = None if datagram is None or cache is None else cache.datagram_key(datagram)
        response = await self.handler.answer(
            envelope, payload, peer=peer, udp=True, datagram_key=key
        )
        if response is None or self.transport is None or self.transport.is_closing():
            return
        self._send(response, envelope, addr, request_size)

    def _send_cached(self, answer: bytes, request: bytes, addr) -> None:
        """``_send`` for a cached answer to a one-datagram, sessionless request."""
        assert self.transport is not None
        if len(answer) > MAX_DATAGRAM:  # cached answers up to 16 KiB: split as usual
            self._send(answer, decode_envelope(request), addr, len(request))
            return
        budget = self.handler.limits.udp_answer_budget(addr[0], len(request), False)
        if budget is not None and len(answer) > budget:
            answer = truncated_answer(answer)  # no amplification: ask again over TCP
        assert self.out is not None
        self.out.send(answer, addr)

    def _send(self, response: bytes, envelope, addr, request_size: int) -> None:
        """Send an encoded answer in datagrams, within the client's amplification budget."""
        assert self.transport is not None
        if len(response) <= MAX_DATAGRAM:
            datagrams = [response]  # the common case: one datagram, nothing to split
        else:
            resp_env = decode_envelope(response[:ENVELOPE_SIZE])
            datagrams = split_datagrams(resp_env, response[ENVELOPE_SIZE:])
        budget = self.handler.limits.udp_answer_budget(
            addr[0], request_size, self._verified(envelope.session_id, addr)
        )
        if budget is not None and sum(map(len, datagrams)) > budget:
            datagrams = [truncated_answer(response)]  # no amplification: ask again over TCP
        assert self.out is not None
        for datagram in datagrams:
            self.out.send(datagram, addr)

    def _verified(self, session_id: int, addr) -> bool:
        """A client holding a live session from its own address did not spoof that address."""
        if not session_id:
            return False
        try:
            self.handler.sessions.identity(session_id, f"{addr[0]}:{addr[1]}")
        except IdnodeError:
            return False
        return True

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


def truncated_answer(response: bytes) -> bytes:
    """Envelope + header of ``response`` with TC set and no body: "too big, use TCP".

    The response code stays, the body length becomes 0; ``framing.is_truncated_answer``
    recognises it (TC on a one-datagram message). HSJ clients cannot decode the empty body
    and move on to their next protocol, TCP; ``client.request_udp`` retries over TCP.
    """
    env = replace(
        decode_envelope(response[:ENVELOPE_SIZE]),
        truncated=True,
        sequence=0,
        message_length=HEADER_SIZE,
    )
    header = peek.without_body(response[ENVELOPE_SIZE : ENVELOPE_SIZE + HEADER_SIZE])
    return encode_envelope(env) + header


async def serve_udp(handler: WireHandler, host: str, port: int, *, reuse_port: bool = False):
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: HandleUDPProtocol(handler), local_addr=(host, port), reuse_port=reuse_port or None
    )
    return transport, protocol
