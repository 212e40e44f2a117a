"""The recursive cache: TTLs on a fake clock, negative caching, coalescing, bounded stale
serving, size bound."""

from __future__ import annotations

import asyncio
import logging

import pytest

from idnode.errors import HandleNotFound
from idnode.hierarchy.recursive import RecursiveResolver
from idnode.hierarchy.resolver import Answer, ReferralLoop, UpstreamFailed
from idnode.model import URL, HandleValue


class Upstream:
    """Stands in for GlobalResolver: counts queries, can fail, can be held at a gate."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.error: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.ttl = 10.0
        self.missing: set[str] = set()

    async def resolve(self, handle: str) -> Answer:
        self.calls.append(handle)
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        if handle in self.missing:
            raise HandleNotFound(f"{handle} not found")
        return Answer(handle, (HandleValue(1, URL, handle.encode()),), self.ttl)


@pytest.fixture
def clock():
    now = [1000.0]
    tick = lambda: now[0]  # noqa: E731
    tick.advance = lambda s: now.__setitem__(0, now[0] + s)  # type: ignore[attr-defined]
    return tick


def cache(upstream, clock, **kw) -> RecursiveResolver:
    kw.setdefault("negative_ttl", 5)
    kw.setdefault("stale_for", 30)
    return RecursiveResolver(upstream, clock=clock, **kw)  # type: ignore[arg-type]


async def test_positive_answers_are_cached_for_their_ttl(clock):
    up = Upstream()
    rec = cache(up, clock)
    first = await rec.lookup("88/a")
    assert first.expires == 1010 and not first.stale
    clock.advance(9.9)
    await rec.lookup("88/A")  # case-insensitive key
    assert up.calls == ["88/a"] and rec.stats.hits == 1
    clock.advance(0.2)
    await rec.lookup("88/a")
    assert up.calls == ["88/a", "88/a"]
    assert rec.stats.misses == 2 and rec.stats.hit_ratio == pytest.approx(1 / 3)


async def test_ttl_is_capped(clock):
    up = Upstream()
    up.ttl = 1e9
    assert (await cache(up, clock, max_ttl=60).lookup("88/a")).expires == 1060


async def test_negative_answers_are_cached_for_negative_ttl(clock):
    up = Upstream()
    up.missing.add("88/none")
    rec = cache(up, clock)
    for _ in range(3):
        with pytest.raises(HandleNotFound):
            await rec.lookup("88/none")
    assert up.calls == ["88/none"] and rec.stats.negative_hits == 2
    clock.advance(5.1)
    with pytest.raises(HandleNotFound):
        await rec.lookup("88/none")
    assert len(up.calls) == 2


async def test_identical_concurrent_queries_share_one_upstream_query(clock):
    up = Upstream()
    up.gate = asyncio.Event()
    rec = cache(up, clock)
    waiters = [asyncio.create_task(rec.lookup("88/hot")) for _ in range(50)]
    await asyncio.sleep(0.01)
    up.gate.set()
    answers = await asyncio.gather(*waiters)
    assert up.calls == ["88/hot"]
    assert {a.values[0].data for a in answers} == {b"88/hot"}
    assert rec.stats.coalesced == 49


async def test_coalesced_failures_reach_every_waiter_and_are_not_cached(clock):
    up = Upstream()
    up.gate, up.error = asyncio.Event(), UpstreamFailed("down")
    rec = cache(up, clock)
    waiters = [asyncio.create_task(rec.lookup("88/x")) for _ in range(5)]
    await asyncio.sleep(0.01)
    up.gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, UpstreamFailed) for r in results) and len(up.calls) == 1
    up.error = None
    assert (await rec.lookup("88/x")).values


async def test_a_cancelled_client_does_not_cancel_the_shared_query(clock):
    up = Upstream()
    up.gate = asyncio.Event()
    rec = cache(up, clock)
    first = asyncio.create_task(rec.lookup("88/c"))
    second = asyncio.create_task(rec.lookup("88/c"))
    await asyncio.sleep(0.01)
    first.cancel()
    up.gate.set()
    assert (await second).values


async def test_stale_answers_are_served_within_the_bound_only(clock, caplog):
    up = Upstream()
    rec = cache(up, clock, stale_for=30)
    await rec.lookup("88/s")  # fresh until 1010
    up.error = UpstreamFailed("no server answered for 88/s")
    clock.advance(15)
    with caplog.at_level(logging.WARNING, "idnode.hierarchy.recursive"):
        stale = await rec.lookup("88/s")
    assert stale.stale and stale.values[0].data == b"88/s"
    assert rec.stats.stale_served == 1
    assert "serving stale answer for 88/s" in caplog.text
    clock.advance(25.1)  # 40.1 s past expiry, the bound is 30
    with pytest.raises(UpstreamFailed):
        await rec.lookup("88/s")
    # and once upstream is back, fresh answers again
    up.error = None
    assert not (await rec.lookup("88/s")).stale


async def test_configuration_errors_are_never_covered_by_stale(clock):
    up = Upstream()
    rec = cache(up, clock)
    await rec.lookup("88/l")
    clock.advance(11)
    up.error = ReferralLoop("referral loop")
    with pytest.raises(ReferralLoop):
        await rec.lookup("88/l")
    assert rec.stats.stale_served == 0


async def test_cache_size_is_bounded(clock):
    up = Upstream()
    rec = cache(up, clock, max_entries=3)
    for i in range(5):
        await rec.lookup(f"88/{i}")
    assert len(rec.cache) == 3 and rec.cache.evictions == 2
    await rec.lookup("88/0")  # evicted: asked again
    assert up.calls.count("88/0") == 2
