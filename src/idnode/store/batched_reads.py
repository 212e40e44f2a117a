"""Point reads that arrive together go to the database together: ``BatchedReads``.

On PostgreSQL each keyed read of the store path (``Store.public_answer``) was its own round
trip: a pooled connection acquired, a statement sent through asyncpg, a reply parsed, the
connection released; about 170 µs of the node's CPU per answer (docs/performance.md). A
resolution node under load has many such reads waiting at once, so the reads asked for in
one turn of the event loop are sent as one ``= ANY($1)`` query and each caller gets its own
row. While ``max_inflight`` queries are out, new keys wait for the next one, which batches
them all: the busier the node, the larger the batches, without a timer that would add
latency when it is idle.

A batch is one statement, hence one snapshot: every answer in it is as of one moment, as
each single read was. A failed query fails every caller of its batch with the same error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_BATCH = 256  # keys in one query
MAX_INFLIGHT = 4  # queries out at once (of the pool's connections, which writes share)


class BatchedReads(Generic[K, V]):
    """``get(key)`` for many concurrent callers, answered by ``fetch(keys)`` (a mapping of
    the keys found to their values) in batches."""

    def __init__(
        self,
        fetch: Callable[[list[K]], Awaitable[dict[K, V]]],
        *,
        max_batch: int = MAX_BATCH,
        max_inflight: int = MAX_INFLIGHT,
    ) -> None:
        self._fetch = fetch
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._scheduled = False
        self._inflight = 0
        self.queries = 0  # sent so far (tests read it)

    async def get(self, key: K) -> V | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        waiters = self._waiting.get(key)
        if waiters is None:
            self._waiting[key] = [future]
        else:
            waiters.append(future)  # the same key asked twice: one row for both
        self._schedule(loop)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and self._inflight < self.max_inflight:
            self._scheduled = True
            loop.call_soon(self._send)  # after every read of this turn has been asked

    def _send(self) -> None:
        self._scheduled = False
        if not self._waiting or self._inflight >= self.max_inflight:
            return
        waiting = self._waiting
        if len(waiting) <= self.max_batch:
            batch, self._waiting = waiting, {}
        else:
            keys = list(waiting)[: self.max_batch]
            batch = {key: waiting.pop(key) for key in keys}
        self._inflight += 1
        self.queries += 1
        loop = asyncio.get_running_loop()
        loop.create_task(self._run(batch))
        if self._waiting:
            self._schedule(loop)  # more than one batch's worth, and room for another query

    async def _run(self, batch: dict[K, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = await self._fetch(list(batch))
        except asyncio.CancelledError:  # the node is stopping: so are its callers
            for waiters in batch.values():
                for future in waiters:
                    future.cancel()
            raise
        except Exception as exc:  # every caller of the batch hears of it
            for waiters in batch.values():
                for future in waiters:
                    if not future.done():
                        future.set_exception(exc)
        else:
            for key, waiters in batch.items():
                value = found.get(key)
                for future in waiters:
                    if not future.done():  # (a caller that gave up)
                        future.set_result(value)
        finally:
            self._inflight -= 1
            if self._waiting:
                self._schedule(asyncio.get_running_loop())
