"""A pool of kept-alive stream connections, each carrying ``pipeline`` requests in flight.

TCP (Handle protocol) and HTTP/1.1 share this: only the parsing of an answer differs
(``parse`` of a subclass). Connections are opened before the clock starts; one that times
out, breaks or is closed by the server is reopened on its next use, since a late answer on
it would be taken for the next request's. Raw ``asyncio.Protocol`` rather than streams or an
HTTP library: those cost more CPU per request than the node spends answering it.

Pipelining (``pipeline`` > 1, HTTP only): answers come back in request order, so each
connection keeps its outstanding requests in a FIFO and hands each complete answer to the
oldest. Once one answer is lost (malformed, timed out, connection gone) the later ones can
no longer be matched, so every request outstanding on that connection fails with it and the
connection is dropped. Writes made in one event-loop iteration are corked and sent in one
``transport.write``: a write is a system call, and they were a quarter of the generator's
time. With ``pipeline`` 1 nothing is corked: each request is written at once, as before.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from idnode.runtime import Clock
from idnode.verify.channel import Failure
from idnode.verify.results import CONNECT, MALFORMED, TIMEOUT
from idnode.verify.workload import Op

RECONNECT_PAUSE = 0.05  # seconds a caller waits after a failed connect, so it cannot spin


class StreamConnection(asyncio.Protocol):
    """One connection; ``parse`` pulls one complete answer out of ``self.buf``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        # (future, deadline in the pool's clock.monotonic_ns) per request sent and not yet
        # answered, oldest first; deadlines grow along it, so only the head can be overdue first
        self.pending: deque[tuple[asyncio.Future, int]] = deque()
        self.closing = False  # the server said it will close after this answer
        self.cork = False  # buffer writes until the end of the loop iteration (pipelining)
        self.out: list[bytes] = []  # corked writes not yet flushed
        # set while one caller (re)connects: the other slots of this connection wait on it
        # instead of opening connections of their own over the same protocol object
        self.opening: asyncio.Future[str | None] | None = None

    # -- subclass ----------------------------------------------------------------------
    def parse(self) -> object | None:
        """The answer if ``buf`` holds a whole one (consume it), else None. Raise
        ``ValueError`` for bytes that cannot be an answer."""
        raise NotImplementedError

    # -- asyncio -----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        pending = self.pending
        if not pending:
            return  # unsolicited bytes: they spoil the next answer, so drop the connection
        while pending:  # one read may hold several pipelined answers
            try:
                answer = self.parse()
            except ValueError as exc:
                self.fail(Failure(MALFORMED, str(exc)))
                return
            if answer is None:
                return
            fut = pending.popleft()[0]
            if not fut.done():  # its caller may have been cancelled
                fut.set_result(answer)
            if self.closing:
                if pending:  # pipelined behind the last answer the server will send
                    note = f"Connection: close with {len(pending)} more requests in flight"
                    self.fail(Failure(CONNECT, note))
                else:
                    self.drop()
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.pending:
            self.fail(Failure(CONNECT, f"connection lost: {exc or 'closed by the server'}"))

    # -- pool side ---------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, data: bytes, deadline: int) -> asyncio.Future:
        assert self.transport is not None
        fut = asyncio.get_running_loop().create_future()
        self.pending.append((fut, deadline))
        if self.cork:
            out = self.out
            out.append(data)
            if len(out) == 1:  # first write since the last flush: one flush per iteration
                asyncio.get_running_loop().call_soon(self.flush)
        else:
            self.transport.write(data)
        return fut

    def flush(self) -> None:
        """Send the corked writes in one system call. A no-op once ``drop`` emptied them
        (their requests have failed already) or the connection is closing (they will)."""
        out = self.out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def fail(self, failure: Failure) -> None:
        """Fail every outstanding request and drop the connection: answers after a lost
        one cannot be matched to their requests any more."""
        pending, self.pending = self.pending, deque()
        self.drop()
        for fut, _ in pending:
            if not fut.done():
                fut.set_result(failure)

    def drop(self) -> None:
        self.buf.clear()
        self.out.clear()
        self.closing = False
        if self.transport is not None:
            self.transport.close()
            self.transport = None


class StreamPool:
    """``size`` connections to ``host:port``, ``pipeline`` slots on each; ``call`` borrows
    an idle slot. Deadlines are in ``clock.monotonic_ns``: the caller's clock, the one its
    ``sweep(now_ns)`` reads too."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        size: int,
        timeout: float,
        factory: Callable[[], StreamConnection],
        encode: Callable[[Op], bytes],
        check: Callable[[Op, object], tuple[str, str | None]],
        clock: Clock,
        pipeline: int = 1,
    ) -> None:
        self.host, self.port = host, port
        self.size = max(1, size)
        self.pipeline = max(1, pipeline)
        self.timeout_ns = int(timeout * 1e9)
        self.now_ns = clock.monotonic_ns  # bound once: read per request
        self.factory, self.encode, self.check = factory, encode, check
        # a connection appears here once per free slot: ``pipeline`` times when all are free
        self.idle: asyncio.Queue[StreamConnection] = asyncio.Queue()
        self.conns: list[StreamConnection] = []

    async def _open(self, conn: StreamConnection) -> None:
        """(Re)connect ``conn``: the same object, so the pool and the sweeper keep it."""
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(
            loop.create_connection(lambda: conn, self.host, self.port), self.timeout_ns / 1e9
        )

    async def _reopen(self, conn: StreamConnection) -> str | None:
        """Reconnect ``conn`` once however many of its slots find it broken: the first
        caller connects, the others wait for it. None when open, else the error note."""
        opening = conn.opening
        if opening is not None:
            # shielded: a cancelled waiter must not cancel the others' wait
            return await asyncio.shield(opening)
        conn.opening = opening = asyncio.get_running_loop().create_future()
        note: str | None = "connect cancelled"
        try:
            await self._open(conn)
            note = None
        except (OSError, TimeoutError) as exc:
            note = f"connect {self.host}:{self.port}: {exc or 'timed out'}"
        finally:
            conn.opening = None
            opening.set_result(note)
        return note

    async def start(self) -> None:
        """Open every connection; one that cannot connect now is retried on use, and its
        requests count as ``connect`` errors meanwhile."""
        self.conns = [self.factory() for _ in range(self.size)]
        for conn in self.conns:
            conn.cork = self.pipeline > 1
        await asyncio.gather(*(self._open(c) for c in self.conns), return_exceptions=True)
        for _ in range(self.pipeline):  # round robin: fewer callers than slots still spread
            for conn in self.conns:
                self.idle.put_nowait(conn)

    async def call(self, op: Op) -> tuple[str, str | None]:
        try:  # closed loop with a slot per worker: one is always idle, no await
            conn = self.idle.get_nowait()
        except asyncio.QueueEmpty:
            conn = await self.idle.get()
        try:
            if not conn.usable:
                note = await self._reopen(conn)
                if note is None and not conn.usable:
                    note = f"connection to {self.host}:{self.port} closed as it opened"
                if note is not None:
                    await asyncio.sleep(RECONNECT_PAUSE)
                    return CONNECT, note
            got = await conn.send(self.encode(op), self.now_ns() + self.timeout_ns)
        finally:
            self.idle.put_nowait(conn)
        if isinstance(got, Failure):
            return got.kind, got.note
        return self.check(op, got)

    def sweep(self, now_ns: int) -> None:
        for conn in self.conns:
            pending = conn.pending
            if pending and pending[0][1] <= now_ns:
                conn.fail(Failure(TIMEOUT))

    async def close(self) -> None:
        for conn in self.conns:
            conn.fail(Failure(TIMEOUT))
