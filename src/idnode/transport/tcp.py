"""The Handle protocol over TCP: a byte stream of enveloped messages, answered in order.

Bounded memory whatever the client does (docs/security.md, "Bounded memory"): a client that
pipelines requests and never reads the answers must not make the node buffer them. So a
connection stops reading while its unsent output is above the transport's high-water mark
(``pause_writing``) or ``QUEUE_LIMIT`` requests wait for an answer; input already read is
parsed ``SLICE`` bytes at a time and what is left waits (at most one read) until the client
takes its answers. Cached answers, written without a task, obey the same bound: past it a
request joins the queue instead, and the worker that answers the queue waits for the client
to drain its output before writing more.

Connections are counted in the process's ``ConnectionBudget`` (``connections.py``): at most
``tcp_max_connections_per_ip`` per address on this listener, and the process's total below
its descriptor limit, the longest-idle connection giving way to a newcomer.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module

from idnode.errors import MalformedMessage
from idnode.transport.connections import ConnectionBudget, Ticket, shut
from idnode.transport.idis import StreamSession
from idnode.transport.turn_writes import Cork, turn_writer
from idnode.transport.wire_handler import WireHandler
from idnode.wire.envelope import ENVELOPE_SIZE
from idnode.wire.framing import TcpFramer

log = logging.getLogger("idnode.tcp")

IDLE_TIMEOUT = 60.0  # seconds a connection may sit without a complete request
SLICE = 4096  # bytes of input parsed at a time, so a full output stops the parsing early
QUEUE_LIMIT = 64  # requests waiting for an answer on one connection before reading stops
OUTPUT_HIGH_WATER = 64 * 1024  # unsent answer bytes above which reading stops


class HandleTCPProtocol(asyncio.Protocol):
    """One connection. Requests are queued and answered one at a time, in arrival order."""

    def __init__(
        self,
        handler: WireHandler,
        idle_timeout: float = IDLE_TIMEOUT,
        *,
        read_deadline: float | None = None,
        budget: ConnectionBudget | None = None,
        listener: str = "tcp",
    ) -> None:
        self.handler = handler
        # slowloris: a message begun must be complete within this many seconds
        self.read_deadline = read_deadline or handler.limits.tcp_read_deadline
        self.read_handle: asyncio.TimerHandle | None = None
        self.budget = budget
        self.listener = listener
        self.ticket: Ticket | None = None  # our place in the budget while open
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
        # what this connection established about itself (an IDIS client's own session id and
        # login, transport/idis.py): it lives and dies with the connection
        self.session = StreamSession()
        # backpressure: input read but not parsed, and why reading is paused
        self.backlog = b""
        self.write_paused = False
        self.drained = asyncio.Event()
        self.drained.set()
        self.reading_paused = False
        self.pump_scheduled = False
        self.eof = False
        # every answer (inline, or computed by ``_serve``), written at the end of the loop's
        # turn with every other connection's (``turn_writes``)
        self.out: Cork | None = None

    # -- the budget's view of this connection ----------------------------------------------
    def busy(self) -> bool:
        return self.answering

    def evict(self) -> None:
        log.info("closing %s: connection budget full, this one idle longest", self.peer)
        if self.transport is not None:
            self.transport.abort()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = f"{peer[0]}:{peer[1]}"
        self.host_ip = str(peer[0])
        limits = self.handler.limits
        if self.budget is not None:
            counted = None if limits.is_exempt(self.host_ip) else self.host_ip
            self.ticket = self.budget.admit(
                self, self.listener, counted, limits.tcp_max_connections_per_ip
            )
            if self.ticket is None:
                log.info("refusing %s: too many connections (from that host, or in all)", self.peer)
                transport.abort()  # type: ignore[attr-defined]
                return
        self.transport.set_write_buffer_limits(high=OUTPUT_HIGH_WATER)
        loop = asyncio.get_running_loop()
        self.out = Cork(transport, turn_writer(loop))
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
        if self.out is not None:
            self.out.flush()  # the answers given before the reason to close
        shut(self.transport)

    # -- flow control ------------------------------------------------------------------------
    def pause_writing(self) -> None:
        self.write_paused = True
        self.drained.clear()
        self._sync_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self.drained.set()
        self._schedule_pump()

    def _held(self) -> bool:
        """Whether no more input should be parsed now: output or queue over their bounds."""
        return self.write_paused or self.queue.qsize() >= QUEUE_LIMIT

    def _sync_reading(self) -> None:
        """Read from the socket only while nothing is held back."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        pause = bool(self.backlog) or self._held()
        if pause != self.reading_paused:
            self.reading_paused = pause
            if pause:
                transport.pause_reading()
            else:
                transport.resume_reading()

    def _schedule_pump(self) -> None:
        if (self.backlog or self.reading_paused) and not self.pump_scheduled:
            self.pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    # -- input ---------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if not self.backlog and self._answered_whole(data):
            return
        self.backlog = self.backlog + data if self.backlog else data
        self._pump()

    def _answered_whole(self, data: bytes) -> bool:
        """Answer a read that holds exactly one whole request, with nothing before it
        unanswered, from the response cache or the store inline by its bytes, as a datagram
        is (``answer_datagram_cached``, ``answer_datagram_stored``): no framing, no envelope
        decoded. False: the framer and ``_take`` see it as usual."""
        transport = self.transport
        if (
            transport is None
            or self.answering
            or self.write_paused
            or self.framer.buffered
            or not self.queue.empty()
            or len(data) < ENVELOPE_SIZE
            or int.from_bytes(data[16:20], "big") != len(data) - ENVELOPE_SIZE
        ):
            return False
        handler = self.handler
        answer = handler.answer_datagram_cached(data, self.host_ip, udp=False)
        if answer is None:
            answer = handler.answer_datagram_stored(data, self.host_ip, udp=False)
        if answer is None or self.out is None:
            return False
        self.out.write(answer)
        self.last_request = asyncio.get_running_loop().time()
        if self.budget is not None:
            self.budget.active(self.ticket)
        self._arm_read_deadline(restart=True)
        return True

    def _pump(self) -> None:
        """Parse the input held back, a slice at a time, while output and queue allow."""
        self.pump_scheduled = False
        data, self.backlog = self.backlog, b""
        offset, size = 0, len(data)
        while offset < size and not self._held() and self.transport is not None:
            piece = data if size <= SLICE else data[offset : offset + SLICE]
            offset += len(piece)
            try:
                frames = self.framer.feed(piece)
            except MalformedMessage as exc:
                log.info("closing %s: %s", self.peer, exc)
                self._close()
                return
            self._take(frames)
        if offset < size:
            self.backlog = data[offset:]
        elif self.eof:
            self.queue.put_nowait(None)  # everything read is queued: finish, then close
            self.eof = False
        self._sync_reading()

    def _take(self, frames: list) -> None:
        handler, transport = self.handler, self.transport
        for frame in frames:
            if (
                not self.answering
                and not self.write_paused
                and self.queue.empty()
                and transport is not None
            ):
                # nothing before it is unanswered: a cached answer, or a stored one read
                # inline (SQLite), can go out now, in order, without a task
                hit = handler.answer_frame_cached(frame[0], frame[1], self.host_ip)
                if hit is None:
                    hit = handler.answer_frame_stored(frame[0], frame[1], self.host_ip)
                if hit is not None and self.out is not None:
                    self.out.write(hit)
                    continue
            self.queue.put_nowait(frame)
        if frames:
            self.last_request = asyncio.get_running_loop().time()
            if self.budget is not None:
                self.budget.active(self.ticket)
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
        if self.backlog:
            self.eof = True  # queued once the input held back is parsed
        else:
            self.queue.put_nowait(None)  # finish queued answers, then close
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.idle_handle is not None:
            self.idle_handle.cancel()
        if self.read_handle is not None:
            self.read_handle.cancel()
        if self.budget is not None:
            self.budget.release(self.ticket)
            self.ticket = None
        if self.worker is not None:
            self.worker.cancel()
        self.backlog = b""
        if self.out is not None:
            self.out.drop()
        self.drained.set()
        self.transport = None

    # -- answers -------------------------------------------------------------------------------
    async def _serve(self) -> None:
        while True:
            frame = await self.queue.get()
            if self.backlog or self.reading_paused:
                self._schedule_pump()  # the queue shrank: parse more if output allows
            if frame is None:
                self._close()
                return
            envelope, payload = frame
            self.answering = True
            try:
                # a long listing arrives as several messages chained with the CN flag
                responses = await self.handler.answer_messages(
                    envelope, payload, peer=self.peer, conn=self.session
                )
            finally:
                self.answering = self.queue.qsize() > 0
            if self.transport is None:
                return
            out = self.out
            if out is None:
                return
            for response in responses:
                out.write(response)  # after the inline answers before it, at the turn's end
            if self.session.stream is not None:
                out.flush()  # the answer, then the stream
                await self._send_stream()
                return
            if self.write_paused:
                await self.drained.wait()  # the client is not reading: answer no further

    async def _send_stream(self) -> None:
        """Write a replication stream after its answer, pausing while the receiver is
        behind, then close the connection as HSJ's server does."""
        stream, self.session.stream = self.session.stream, None
        assert stream is not None
        self.answering = True  # busy: neither idle nor evictable while it streams
        try:
            async for chunk in stream:
                if self.transport is None:
                    return
                self.transport.write(chunk)
                if self.write_paused:
                    await self.drained.wait()
        except Exception:
            log.exception("replication stream to %s failed", self.peer)
        finally:
            await stream.aclose()
            self._close()


async def serve_tcp(
    handler: WireHandler,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    ssl: ssl_module.SSLContext | None = None,
    budget: ConnectionBudget | None = None,
):
    """A listener; with ``ssl`` the same protocol inside TLS (``[tls] tcp_port``, tls.py).

    ``budget``: the process's connection budget, shared with its other listeners (``serve``
    passes one); without it the listener has a budget of its own."""
    loop = asyncio.get_running_loop()
    if budget is None:
        budget = ConnectionBudget(handler.limits.max_connections)
    listener = "tls" if ssl is not None else "tcp"
    return await loop.create_server(
        lambda: HandleTCPProtocol(handler, budget=budget, listener=listener),
        host,
        port,
        reuse_port=reuse_port or None,
        ssl=ssl,
    )
