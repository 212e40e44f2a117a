"""Two serving processes of one node (``--workers 2``) see each other's lifecycle changes:
the states live in the store, and each process reloads them when the store announces one."""

from __future__ import annotations

import asyncio

import pytest

from idnode.app import open_node
from idnode.bootstrap import init_node
from idnode.config import load_config
from idnode.errors import HandleNotFound
from idnode.runtime import system


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
