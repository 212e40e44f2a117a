"""Prometheus metrics of the response caches, one series per face (``wire``, ``http``).

Each worker process has its own caches, so with ``--workers N`` a scrape sees the worker
that answered it; the hit ratio of any one worker is representative of all of them, since
the kernel spreads clients evenly (SO_REUSEPORT).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from idnode.transport.response_cache import ResponseCache


class ResponseCacheCollector:
    """Reads the caches' counters at scrape time: nothing is added to the hot path."""

    def __init__(self, caches: Mapping[str, ResponseCache]) -> None:
        self.caches = caches

    def collect(self) -> Iterator[object]:
        hits = CounterMetricFamily(
            "idnode_response_cache_hits", "Answers served from the response cache", labels=["face"]
        )
        misses = CounterMetricFamily(
            "idnode_response_cache_misses",
            "Cacheable requests that had to be resolved",
            labels=["face"],
        )
        cleared = CounterMetricFamily(
            "idnode_response_cache_invalidations",
            "Times a committed write cleared the cache",
            labels=["face"],
        )
        entries = GaugeMetricFamily(
            "idnode_response_cache_entries", "Answers held in the cache", labels=["face"]
        )
        for face, cache in sorted(self.caches.items()):
            hits.add_metric([face], cache.stats.hits)
            misses.add_metric([face], cache.stats.misses)
            cleared.add_metric([face], cache.stats.invalidations)
            entries.add_metric([face], len(cache))
        yield from (hits, misses, cleared, entries)
