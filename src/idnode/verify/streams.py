"""A pool of kept-alive stream connections, one request in flight on each.

TCP (Handle protocol) and HTTP/1.1 share this: only the parsing of an answer differs
(``parse`` of a subclass). Connections are opened before the clock starts; one that times
out, breaks or is closed by the server is reopened on its next use, since a late answer on
it would be taken for the next request's. Raw ``asyncio.Protocol`` rather than streams or an
HTTP library: those cost more CPU per request than the node spends answering it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from idnode.verify.channel import Failure
from idnode.verify.results import CONNECT, MALFORMED, TIMEOUT
from idnode.verify.workload import Op

RECONNECT_PAUSE = 0.05  # seconds a caller waits after a failed connect, so it cannot spin


class StreamConnection(asyncio.Protocol):
    """One connection; ``parse`` pulls one complete answer out of ``self.buf``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.fut: asyncio.Future | None = None
        self.deadline = 0
        self.closing = False  # the server said it will close after this answer

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
        fut = self.fut
        if fut is None:
            return  # unsolicited bytes: they spoil the next answer, so drop the connection
        try:
            answer = self.parse()
        except ValueError as exc:
            self.fail(Failure(MALFORMED, str(exc)))
            return
        if answer is not None:
            self.fut = None
            fut.set_result(answer)
            if self.closing:
                self.drop()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.fut is not None:
            self.fail(Failure(CONNECT, f"connection lost: {exc or 'closed by the server'}"))

    # -- pool side ---------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def send(self, data: bytes, deadline: int) -> asyncio.Future:
        assert self.transport is not None and self.fut is None
        self.fut = fut = asyncio.get_running_loop().create_future()
        self.deadline = deadline
        self.transport.write(data)
        return fut

    def fail(self, failure: Failure) -> None:
        fut, self.fut = self.fut, None
        self.drop()
        if fut is not None and not fut.done():
            fut.set_result(failure)

    def drop(self) -> None:
        self.buf.clear()
        self.closing = False
        if self.transport is not None:
            self.transport.close()
            self.transport = None


class StreamPool:
    """``size`` connections to ``host:port``; ``call`` borrows an idle one."""

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
    ) -> None:
        self.host, self.port = host, port
        self.size = max(1, size)
        self.timeout_ns = int(timeout * 1e9)
        self.factory, self.encode, self.check = factory, encode, check
        self.idle: asyncio.Queue[StreamConnection] = asyncio.Queue()
        self.conns: list[StreamConnection] = []

    async def _open(self, conn: StreamConnection) -> None:
        """(Re)connect ``conn``: the same object, so the pool and the sweeper keep it."""
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(
            loop.create_connection(lambda: conn, self.host, self.port), self.timeout_ns / 1e9
        )

    async def start(self) -> None:
        """Open every connection; one that cannot connect now is retried on use, and its
        requests count as ``connect`` errors meanwhile."""
        self.conns = [self.factory() for _ in range(self.size)]
        await asyncio.gather(*(self._open(c) for c in self.conns), return_exceptions=True)
        for conn in self.conns:
            self.idle.put_nowait(conn)

    async def call(self, op: Op) -> tuple[str, str | None]:
        try:  # closed loop with a connection per worker: one is always idle, no await
            conn = self.idle.get_nowait()
        except asyncio.QueueEmpty:
            conn = await self.idle.get()
        try:
            if not conn.usable:
                try:
                    await self._open(conn)
                except (OSError, TimeoutError) as exc:
                    await asyncio.sleep(RECONNECT_PAUSE)
                    return CONNECT, f"connect {self.host}:{self.port}: {exc or 'timed out'}"
            got = await conn.send(self.encode(op), time.perf_counter_ns() + self.timeout_ns)
        finally:
            self.idle.put_nowait(conn)
        if isinstance(got, Failure):
            return got.kind, got.note
        return self.check(op, got)

    def sweep(self, now_ns: int) -> None:
        for conn in self.conns:
            if conn.fut is not None and conn.deadline <= now_ns:
                conn.fail(Failure(TIMEOUT))

    async def close(self) -> None:
        for conn in self.conns:
            conn.fail(Failure(TIMEOUT))
