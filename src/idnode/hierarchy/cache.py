"""A bounded TTL cache on an injected clock: fresh, stale-but-servable, or gone.

Why its own module: the recursive node caches answers and the resolver caches site
information, with the same rules -- expire by TTL, keep an expired entry a bounded time so it
can be served when the upstream is down, evict the least recently used beyond a size bound
-- and tests drive the clock by hand instead of sleeping.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Entry:
    value: Any
    expires: float  # clock time the entry stops being fresh
    negative: bool = False  # a cached "does not exist"

    def fresh(self, now: float) -> bool:
        return now < self.expires


class TTLCache:
    """``get`` returns an entry while it is fresh or within ``stale_for`` seconds past expiry
    (the caller decides whether stale is acceptable); older entries are dropped on sight."""

    def __init__(
        self, max_entries: int, clock: Callable[[], float], *, stale_for: float = 0.0
    ) -> None:
        if max_entries <= 0:
            raise ValueError("a cache needs room for at least one entry")
        self.max_entries = max_entries
        self.clock = clock
        self.stale_for = stale_for
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() >= entry.expires + self.stale_for:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, value: Any, ttl: float, *, negative: bool = False) -> Entry:
        entry = Entry(value, self.clock() + max(0.0, ttl), negative)
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.evictions += 1
        return entry

    def clear(self) -> None:
        self._entries.clear()
