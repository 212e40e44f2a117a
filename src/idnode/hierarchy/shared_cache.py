"""Where a recursive node keeps the answers it fetched upstream: shared by all its workers.

Why in the store: ``idnode serve --workers N`` runs N processes, and a cache in each one's
memory made a recursive node's answers flip between found and not-found as the kernel sent a
client to one worker or another (each had fetched at its own moment). The architecture's
rule is that everything a node knows is in its store, so every worker and every host on the
same database sees one truth; the recursive cache follows it (``recursive_cache``, migration
4). A lookup costs one indexed read; a miss one small write, ``logged=False`` like the
children's reports: no log row, no announcement, nobody's response cache cleared.

``LocalAnswers`` keeps the same interface in one process's memory (``TTLCache``), for a
resolver built without a store (tests, tools).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from idnode.hierarchy.cache import Entry, TTLCache
from idnode.store.effects import Effects, Statement
from idnode.store.rows import decode_record, encode_record

if TYPE_CHECKING:
    from idnode.store.base import Store

ACTION = "hierarchy"
TRIM_EVERY = 256  # writes between two trims of expired and surplus entries
GET = "SELECT record, expires, negative FROM {s}.recursive_cache WHERE key = ?"
PUT = (
    "INSERT INTO {s}.recursive_cache (key, record, expires, negative) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET record = excluded.record, expires = excluded.expires,"
    " negative = excluded.negative"
)


class AnswerCache(Protocol):
    """What ``RecursiveResolver`` needs of its cache: entries by handle key, fresh or stale
    (within the cache's stale bound), a size and an eviction count for ``/metrics``."""

    evictions: int

    def __len__(self) -> int: ...

    async def get(self, key: str) -> Entry | None: ...

    async def put(self, key: str, value: Any, ttl: float, *, negative: bool = False) -> Entry: ...


class LocalAnswers:
    """One process's cache (``TTLCache``) behind the async interface."""

    def __init__(self, cache: TTLCache) -> None:
        self.cache = cache

    @property
    def evictions(self) -> int:
        return self.cache.evictions

    def __len__(self) -> int:
        return len(self.cache)

    async def get(self, key: str) -> Entry | None:
        return self.cache.get(key)

    async def put(self, key: str, value: Any, ttl: float, *, negative: bool = False) -> Entry:
        return self.cache.put(key, value, ttl, negative=negative)


class StoreAnswers:
    """The cache in the node's store, one row per handle: every worker reads the same answer.

    Size is bounded like ``TTLCache``'s, but in batches: every ``TRIM_EVERY`` writes, entries
    past their stale bound go, then the soonest to expire beyond ``max_entries``."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        *,
        max_entries: int,
        stale_for: float = 0.0,
    ) -> None:
        if max_entries <= 0:
            raise ValueError("a cache needs room for at least one entry")
        self.store, self.clock = store, clock
        self.max_entries, self.stale_for = max_entries, stale_for
        self.evictions = 0
        self._size = 0  # as counted at the last trim (``/metrics`` cannot wait for a query)
        self._writes = 0

    def __len__(self) -> int:
        return self._size

    async def get(self, key: str) -> Entry | None:
        row = await self.store.query_one(GET, key)
        if row is None:
            return None
        expires = float(row["expires"])
        if self.clock() >= expires + self.stale_for:
            return None  # too old even to serve stale; the next trim removes it
        if row["negative"]:
            return Entry(None, expires, True)
        return Entry(tuple(decode_record(bytes(row["record"]))), expires)

    async def put(self, key: str, value: Any, ttl: float, *, negative: bool = False) -> Entry:
        entry = Entry(value, self.clock() + max(0.0, ttl), negative)
        record = None if negative else encode_record(list(value))
        statement = Statement(PUT, (key, record, entry.expires, 1 if negative else 0))
        await self._apply(statement)
        self._writes += 1
        if self._writes % TRIM_EVERY == 1:
            await self.trim()
        return entry

    async def trim(self) -> None:
        """Drop what is past its stale bound, then the soonest to expire beyond the bound."""
        gone = self.clock() - self.stale_for
        await self._apply(Statement("DELETE FROM {s}.recursive_cache WHERE expires <= ?", (gone,)))
        size = int(await self.store.query_value("SELECT count(*) FROM {s}.recursive_cache"))
        surplus = size - self.max_entries
        if surplus > 0:
            cutoff = await self.store.query_value(
                "SELECT expires FROM {s}.recursive_cache ORDER BY expires LIMIT 1 OFFSET ?",
                surplus - 1,
            )
            await self._apply(
                Statement("DELETE FROM {s}.recursive_cache WHERE expires <= ?", (cutoff,))
            )
            size = int(await self.store.query_value("SELECT count(*) FROM {s}.recursive_cache"))
            self.evictions += surplus
        self._size = size

    async def _apply(self, statement: Statement) -> None:
        effects = Effects(statements=(statement,), action=ACTION, target="recursive cache")
        await self.store.apply(effects, logged=False)
