"""Two serving processes of one node (``--workers 2``) see each other's lifecycle changes:
the states live in the store, and each process reloads them when the store announces one."""

from __future__ import annotations

import asyncio
import threading

import pytest

from idnode.app import open_node
from idnode.bootstrap import init_node
from idnode.config import load_config
from idnode.errors import HandleNotFound
from idnode.runtime import system
from idnode.store.sqlite import SQLiteStore


async def test_a_revocation_through_one_worker_reaches_the_other(tmp_path):
    config = await init_node(
        tmp_path / "n", name="n", prefixes=["20.500.123"], demo=True, runtime=system()
    )
    first = await open_node(load_config(config.directory, env={}), runtime=system())
    second = await open_node(load_config(config.directory, env={}), runtime=system())
    try:
        await second.start()  # what `serve` starts in each worker
        gate = second.registry.gate
        gate("20.500.123/demo-1")  # active: passes
        await first.registry.lifecycle.set_state(None, "20.500.123/demo-1", "revoked", "recall")
        with pytest.raises(HandleNotFound, match="revoked"):
            first.registry.gate("20.500.123/demo-1")

        async def refused() -> str:
            while True:
                try:
                    gate("20.500.123/demo-1")
                except HandleNotFound as exc:
                    return str(exc)
                await asyncio.sleep(0.02)

        async with asyncio.timeout(30):  # the store announces within its poll interval
            assert "recall" in await refused()
    finally:
        await first.close()
        await second.close()


async def test_the_state_check_after_each_write_is_a_point_read(tmp_path):
    """Every commit makes each process check whether the lifecycle states changed (issue
    16: a hop to the scan thread for it was a seventh of a REST create's server time): one
    primary-key read, inline, which answers even while the scan thread is busy."""
    config = await init_node(
        tmp_path / "n", name="n", prefixes=["20.500.123"], demo=True, runtime=system()
    )
    node = await open_node(load_config(config.directory, env={}), runtime=system())
    try:
        engine = node.store
        while not isinstance(engine, SQLiteStore):
            engine = engine.inner
        busy, release = threading.Event(), threading.Event()

        def long_scan(conn) -> None:
            busy.set()
            release.wait(60)

        scanning = asyncio.ensure_future(engine._scan(long_scan))
        try:
            assert await asyncio.to_thread(busy.wait, 60)
            async with asyncio.timeout(30):  # (a guard against hanging, not a measure)
                assert await node.registry.states.refresh(node.store) is False
        finally:
            release.set()
            await scanning
    finally:
        await node.close()
