"""A mirror served by several workers: only worker 0 pulls, and every other worker learns
the prefixes replication homes (and unhomes) without a restart (``service.homing``)."""

from __future__ import annotations

import asyncio

from idnode.app import open_node
from idnode.config import load_config
from idnode.runtime import ManualClock, Runtime, SystemRandom
from idnode.service.resolve import ResolutionQuery, Values
from tests.replication.test_mirror import mirror_template, open_mirror  # noqa: F401
from tests.transport.conftest import PREFIX, node_template, wire_node  # noqa: F401


async def until(check, what: str, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def test_every_worker_serves_what_replication_homes(
    wire_node,  # noqa: F811
    mirror_template,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    worker0 = await open_mirror(mirror_template, tmp_path, wire_node)
    cfg = load_config(tmp_path / "mirror", env={})
    cfg.replication = worker0.config.replication
    monkeypatch.setenv("IDNODE_WORKER", "1")  # a sibling worker: serves, does not pull
    worker1 = await open_node(cfg, runtime=Runtime(ManualClock(), SystemRandom()))
    try:
        await worker1.start()
        assert not worker1.homed.homes_prefix(PREFIX)
        assert worker0.mirror is not None
        await worker0.mirror.pull_once()  # worker 0 dumps: the prefix is homed in the store
        await until(lambda: worker1.homed.homes_prefix(PREFIX), "worker 1 to home the prefix")
        query = ResolutionQuery(f"{PREFIX}/demo-1", public_only=True)
        answer = await worker1.resolver.resolve(query)
        assert isinstance(answer, Values) and answer.values

        await worker0.admin.replicate_home(PREFIX, False)  # the primary unhomed it
        await until(lambda: not worker1.homed.homes_prefix(PREFIX), "worker 1 to drop it")
    finally:
        await worker1.close()
        await worker0.close()
