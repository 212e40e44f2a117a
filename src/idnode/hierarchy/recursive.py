"""The recursive caching node: resolves anything for clients that know only this node.

What a public recursive node must get right, and why each piece is here:

* **TTL caching, positive and negative**: answers are kept for the shortest TTL of their
  values (capped), "not found" for ``negative_ttl``, so hot identifiers cost the tree nothing
  and a flood of made-up names costs it one query each per ``negative_ttl``.
* **Coalescing**: N clients asking for the same identifier at once wait on one upstream
  resolution, so a cache miss on a hot identifier is one query, not N.
* **Stale serving, bounded**: when the upstream is down (unreachable, too slow, garbage),
  an answer that expired less than ``stale_for`` seconds ago is served anyway -- with a
  warning in the log, a metric, and on the wire an expiration time that is already past, so
  a client knows not to cache it. Older answers are never served: the error goes out.
* **Bounded size**: LRU beyond ``max_entries``; hit/miss/stale counters for ``/metrics``.
* **One cache per node, not per worker**: a serving node keeps the cache in its store
  (``shared_cache.StoreAnswers``), so its workers never disagree about an identifier; and
  positive answers are kept at most ``max_ttl`` (300 s by default) whatever TTL upstream
  gave, so a suspension or revocation upstream reaches this node within that time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from idnode.codes import ResponseCode
from idnode.errors import HandleNotFound, IdnodeError
from idnode.hierarchy.cache import TTLCache
from idnode.hierarchy.resolver import GlobalResolver, RecursionBound, ReferralLoop
from idnode.hierarchy.shared_cache import AnswerCache, LocalAnswers
from idnode.model import HandleValue, handle_key

log = logging.getLogger("idnode.hierarchy.recursive")

# upstream trouble a stale answer may cover; a loop or a bound is a configuration error
_UPSTREAM_CODES = frozenset(
    {ResponseCode.ERROR, ResponseCode.SERVER_BUSY, ResponseCode.SERVER_BACKUP}
)


@dataclass
class RecursiveStats:
    hits: int = 0
    negative_hits: int = 0
    misses: int = 0
    coalesced: int = 0
    stale_served: int = 0
    upstream_failures: int = 0

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.negative_hits + self.misses
        return (self.hits + self.negative_hits) / total if total else 0.0


@dataclass(frozen=True, slots=True)
class Lookup:
    handle: str
    values: tuple[HandleValue, ...]
    expires: float  # clock time the answer stops being fresh
    stale: bool = False


class RecursiveResolver:
    def __init__(
        self,
        resolver: GlobalResolver,
        *,
        clock: Callable[[], float],
        max_entries: int = 10_000,
        negative_ttl: float = 60.0,
        stale_for: float = 300.0,
        max_ttl: float = 86400.0,
        cache: AnswerCache | None = None,
    ) -> None:
        """``cache``: where answers are kept (``shared_cache.StoreAnswers`` in a serving
        node, so its workers agree); None keeps them in this process's memory."""
        self.resolver = resolver
        self.clock = clock
        self.negative_ttl = negative_ttl
        self.max_ttl = max_ttl
        self.stale_for = stale_for
        if cache is None:  # (not ``cache or``: an empty cache has len 0)
            cache = LocalAnswers(TTLCache(max_entries, clock, stale_for=stale_for))
        self.cache: AnswerCache = cache
        self.stats = RecursiveStats()
        self._inflight: dict[str, asyncio.Task[Lookup]] = {}

    async def lookup(self, handle: str) -> Lookup:
        """The public values of ``handle``: from the cache while fresh, else from upstream
        (one query however many ask at once), else stale within the bound, else the error."""
        key = handle_key(handle)
        entry = await self.cache.get(key)
        if entry is not None and entry.fresh(self.clock()):
            if entry.negative:
                self.stats.negative_hits += 1
                raise HandleNotFound(f"handle {handle} not found (cached)")
            self.stats.hits += 1
            return Lookup(handle, entry.value, entry.expires)
        task = self._inflight.get(key)
        if task is None:
            self.stats.misses += 1
            task = asyncio.get_running_loop().create_task(self._fetch(handle, key))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        else:
            self.stats.coalesced += 1
        return await asyncio.shield(task)  # a client hanging up must not cancel the others

    async def _fetch(self, handle: str, key: str) -> Lookup:
        try:
            answer = await self.resolver.resolve(handle)
        except HandleNotFound:
            await self.cache.put(key, None, self.negative_ttl, negative=True)
            raise
        except (ReferralLoop, RecursionBound):
            raise
        except IdnodeError as exc:
            if exc.code not in _UPSTREAM_CODES:
                raise
            self.stats.upstream_failures += 1
            stale = await self.cache.get(key)  # still inside the stale window, or None
            if stale is None or stale.negative:
                raise
            self.stats.stale_served += 1
            age = self.clock() - stale.expires
            log.warning(
                "serving stale answer for %s, expired %.1fs ago (bound %.0fs): %s",
                handle,
                age,
                self.stale_for,
                exc,
                extra={"handle": handle, "stale_seconds": round(age, 1)},
            )
            return Lookup(handle, stale.value, stale.expires, stale=True)
        entry = await self.cache.put(key, answer.values, min(answer.ttl, self.max_ttl))
        return Lookup(handle, answer.values, entry.expires)
