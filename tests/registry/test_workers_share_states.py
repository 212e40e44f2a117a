"""Two serving processes of one node (``--workers 2``) see each other's lifecycle changes."""

from __future__ import annotations

import asyncio

import pytest

from idnode.bootstrap import init_node
from idnode.config import load_config
from idnode.errors import HandleNotFound
from idnode.runtime import system
from idnode.service.node import open_node


async def test_a_revocation_through_one_worker_reaches_the_other(tmp_path):
    config = await init_node(
        tmp_path / "n", name="n", prefixes=["20.500.123"], demo=True, runtime=system()
    )
    first = await open_node(load_config(config.directory, env={}), runtime=system())
    second = await open_node(load_config(config.directory, env={}), runtime=system())
    try:
        second.registry.watch(interval=0.1)  # what `serve` starts in each worker
        second.resolver.gate("20.500.123/demo-1")  # active: passes
        await first.registry.lifecycle.set_state(None, "20.500.123/demo-1", "revoked", "recall")
        first_gate = first.resolver.gate
        with pytest.raises(HandleNotFound, match="revoked"):
            first_gate("20.500.123/demo-1")
        for _ in range(40):
            await asyncio.sleep(0.1)
            try:
                second.resolver.gate("20.500.123/demo-1")
            except HandleNotFound as exc:
                assert "recall" in str(exc)
                break
        else:
            raise AssertionError("the second worker never saw the revocation")
    finally:
        for node in (first, second):
            if node.registry is not None:
                await node.registry.close()
            await node.store.close()
