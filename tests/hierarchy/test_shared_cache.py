"""Issue 20: the workers of a recursive node share one cache, and a suspension upstream
reaches it within ``max_ttl`` (300 s by default) instead of the values' 24 h.

The upstream is a real ``idnode serve`` (its identifier suspended through the registry, as
an operator would); the recursive node's two workers are two ``open_node`` on the same node
directory, as ``idnode serve --workers 2`` runs them; the store cache is also exercised on
a real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from idnode import client
from idnode.app import open_node
from idnode.bootstrap import init_node
from idnode.codes import ResponseCode
from idnode.config import load_config
from idnode.errors import HandleNotFound
from idnode.hierarchy.roles import apply_role
from idnode.hierarchy.shared_cache import StoreAnswers
from idnode.model import URL, HandleValue
from idnode.runtime import ManualClock, Runtime, SeededRandom, system
from idnode.service.resolve import ResolutionQuery, Values
from idnode.store.postgres import PostgresStore
from idnode.wire.site import SiteInfo, encode_site
from tests.conftest import free_port, serve_node, stop_node
from tests.store.conftest import PG_DSN, drop_pg_schema, pg_schema_for

PART = "88/P1"  # a one-segment prefix: the upstream node is its own root


async def upstream_dir(directory: Path) -> Path:
    """A node homing 88 with one identifier (values' TTL: 24 h)."""
    cfg = await init_node(directory, name="ent", prefixes=["88"], runtime=system())
    node = await open_node(load_config(cfg.directory, env={}), runtime=system())
    try:
        await node.store.create_handle(PART, [HandleValue(1, URL, b"https://e.com/p1")])
    finally:
        await node.close()
    return directory


async def suspend(directory: Path) -> None:
    """What ``idnode handle suspend`` does: the registry's write, beside the serving node."""
    node = await open_node(load_config(directory, env={}), runtime=system())
    try:
        await node.registry.lifecycle.set_state(None, PART, "suspended", "recall")
    finally:
        await node.close()


async def until_upstream_refuses(port: int) -> None:
    """The served node reloads the registry's states when the store announces the change:
    wait for that event (bounded, so a change never seen fails instead of hanging)."""
    for _ in range(600):
        reply = await client.request_udp("127.0.0.1", port, client.resolution_request(PART))
        if reply.header.response_code == ResponseCode.HANDLE_NOT_FOUND:
            return
        await asyncio.sleep(0.1)
    pytest.fail("the upstream node never answered the suspension")


async def lookup(worker) -> Values | HandleNotFound:
    try:
        return await worker.hierarchy.routing.route(ResolutionQuery(PART), recursion=False)
    except HandleNotFound as exc:
        return exc


async def test_workers_agree_and_a_suspension_reaches_them_within_max_ttl(tmp_path):
    ent = await upstream_dir(tmp_path / "ent")
    port, http_port = free_port(), free_port()
    served = serve_node(ent, port, http_port, "88")
    runtime = Runtime(ManualClock(1_793_577_600.0), SeededRandom(0))
    root = tmp_path / "root.bin"
    root.write_bytes(encode_site(SiteInfo.for_single_server("127.0.0.1", port, port, http_port)))
    cfg = await init_node(tmp_path / "rec", name="rec", prefixes=[], runtime=runtime)
    apply_role(cfg, "recursive", root_info=str(root))
    cfg.hierarchy.upstream_timeout = 5
    workers = [await open_node(cfg, runtime=runtime) for _ in range(2)]
    try:
        first = await lookup(workers[0])
        assert isinstance(first, Values) and first.values[0].data == b"https://e.com/p1"

        await suspend(ent)
        await until_upstream_refuses(port)
        second = await lookup(workers[1])  # the other worker: the same answer, not a flip
        assert isinstance(second, Values) and second.values == first.values

        runtime.clock.advance(301)  # past max_ttl, far inside the values' 24 h
        for worker in workers:
            gone = await lookup(worker)
            assert isinstance(gone, HandleNotFound), gone
        assert workers[1].hierarchy.recursive.stats.negative_hits == 1  # shared "not found"
    finally:
        for worker in workers:
            await worker.close()
        stop_node(served)


@pytest.fixture
async def pg(tmp_path):
    await drop_pg_schema(tmp_path)
    store = PostgresStore(PG_DSN, schema=pg_schema_for(tmp_path), clock=ManualClock(), max_size=2)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        await drop_pg_schema(tmp_path)


async def test_the_store_cache_keeps_stale_bounds_and_size_on_postgresql(pg):
    clock = ManualClock(1000.0)
    values = (HandleValue(1, URL, b"https://e.com/a"),)
    one = StoreAnswers(pg, clock, max_entries=2, stale_for=30)
    two = StoreAnswers(pg, clock, max_entries=2, stale_for=30)  # another worker
    await one.put("88/a", values, 10)
    await one.put("88/gone", None, 5, negative=True)
    got = await two.get("88/a")
    assert got is not None and got.value == values and got.fresh(clock())
    missing = await two.get("88/gone")
    assert missing is not None and missing.negative
    clock.advance(20)  # stale, still servable while upstream is down
    stale = await two.get("88/a")
    assert stale is not None and not stale.fresh(clock())
    clock.advance(30)  # past the stale bound: gone
    assert await two.get("88/a") is None
    for n in range(3):
        await one.put(f"88/n{n}", values, 100 + n)
    await one.trim()
    assert len(one) == 2 and await two.get("88/n0") is None  # the soonest to expire went
    assert await two.get("88/n2") is not None
