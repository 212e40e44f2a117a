"""Retention of the change logs (issue 17): pruning at a fixed clock on both engines, the
horizon a source answers "redump" behind, and a mirror recovering from it by a dump."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from idnode.model import HandleValue
from idnode.replication.retention import DAY, prune
from idnode.service.replication import (
    PRUNED_CHANGES_KEY,
    PRUNED_LOG_KEY,
    position_of,
    read_meta,
    set_meta,
)
from idnode.store import capture
from idnode.store.effects import Effects
from idnode.wire import replication as rw
from tests.replication.test_mirror import URL, mirror_template, pair  # noqa: F401
from tests.store.conftest import clock, make_store, store  # noqa: F401
from tests.transport.conftest import PREFIX, node_template, wire_node  # noqa: F401

VALUES = [HandleValue(1, "URL", b"https://example.com/x")]


async def _governance_change(target, n: int) -> None:
    """One captured governance change (a ``meta`` key that is not a replication one)."""
    await target.apply(Effects(statements=(set_meta(f"test.key{n}", str(n)),)))


async def _changes(target) -> list[int]:
    rows = await target.query("SELECT id FROM {s}.repl_changes ORDER BY id")
    return [int(r["id"]) for r in rows]


async def test_pruning_deletes_old_entries_and_keeps_recent_ones(store, clock):  # noqa: F811
    start = clock.now
    for n in range(10):
        await store.create_handle(f"20.500.1/old-{n}", VALUES)
        await _governance_change(store, n)
    old_serial = await store.serial()
    old_changes = await _changes(store)
    # a prune at the time of the old entries keeps everything and marks where the changes are
    first = await prune(store, now=clock.now, keep_days=30, batch=3)
    assert (first.transactions, first.changes) == (0, 0)

    clock.now = start + 20 * DAY
    for n in range(5):
        await store.create_handle(f"20.500.1/new-{n}", VALUES)
        await _governance_change(store, 100 + n)
    new_changes = [i for i in await _changes(store) if i > old_changes[-1]]
    last = await store.serial()

    clock.now = start + 31 * DAY  # the old entries are 31 days old, the new ones 11
    report = await prune(store, now=clock.now, keep_days=30, batch=3)
    assert report.transactions == old_serial
    assert report.batches >= old_serial // 3  # bounded batches, one transaction each
    kept = await store.transactions(0, 1000)
    assert [t.serial for t in kept] == list(range(old_serial + 1, last + 1))
    assert {t.handle for t in kept if t.handle} == {f"20.500.1/new-{n}" for n in range(5)}
    assert await store.serial() == last  # the serial never goes back
    assert await read_meta(store, PRUNED_LOG_KEY) == str(old_serial)
    assert report.changes == len(old_changes)
    assert await _changes(store) == new_changes
    assert await read_meta(store, PRUNED_CHANGES_KEY) == str(old_changes[-1])
    # the records themselves are untouched
    assert await store.get_handle("20.500.1/old-0") is not None

    again = await prune(store, now=clock.now, keep_days=30, batch=3)
    assert (again.transactions, again.changes) == (0, 0)  # idempotent


async def test_pruning_keeps_the_newest_entries_and_zero_keeps_everything(store, clock):  # noqa: F811
    for n in range(4):
        await store.create_handle(f"20.500.1/h-{n}", VALUES)
        await _governance_change(store, n)
    await prune(store, now=clock.now, keep_days=1)  # marks the changes
    last, newest = await store.serial(), (await _changes(store))[-1]
    assert await prune(store, now=clock.now + 400 * DAY, keep_days=0) is None  # disabled
    assert len(await store.transactions(0, 100)) == last
    report = await prune(store, now=clock.now + 400 * DAY, keep_days=1)
    # the newest entry of each log stays: a source's next id and a full copy's position
    # (the newest change id) come from them
    assert report.transactions == last - 1
    assert [t.serial for t in await store.transactions(0, 100)] == [last]
    assert await _changes(store) == [newest]
    assert int(await store.query_value(capture.LAST_CHANGE)) == newest


async def _clock_after_the_log(pair) -> None:  # noqa: F811
    """The primary's clock set to its newest log entry: the template node was made with the
    real clock, so the test's times must follow those entries whatever today's date."""
    newest = max(t.timestamp for t in await pair.primary.node.store.transactions(0, 100_000))
    pair.primary.clock.set(max(float(newest), pair.primary.clock()))


async def test_a_mirror_behind_the_pruned_horizon_recovers_by_dump(pair):  # noqa: F811
    primary = pair.primary.node
    await _clock_after_the_log(pair)
    assert await pair.loop.pull_once() == 0 and pair.loop.stats.dumps == 1
    await pair.loop.pull_governance(pair.loop.sources[0])
    assert pair.loop.stats.governance_copies == 1
    # the mirror stops pulling; the primary goes on for 40 days
    async with pair.primary.client() as c:
        await c.create_handle(f"{PREFIX}/while-away", [URL])
        await c.delete_handle(f"{PREFIX}/demo-2")
    await prune(primary.store, now=primary.runtime.clock(), keep_days=30)  # marks the changes
    pair.primary.clock.advance(40 * DAY)
    async with pair.primary.client() as c:
        await c.create_handle(f"{PREFIX}/after", [URL])
    report = await prune(primary.store, now=primary.runtime.clock(), keep_days=30)
    assert report.transactions > 0 and report.changes > 0

    await pair.loop.pull_once()  # too far behind: told to redump, and dumps
    assert pair.loop.stats.dumps == 2
    for handle in (f"{PREFIX}/while-away", f"{PREFIX}/after", f"{PREFIX}/demo-1"):
        assert await pair.same(handle) and await pair.mirror.store.get_handle(handle)
    assert await pair.mirror.store.get_handle(f"{PREFIX}/demo-2") is None
    assert await position_of(pair.mirror.store) == rw.txn_id(0, await primary.store.serial())
    # its governance position was behind the pruned changes too: a full copy
    assert pair.loop.stats.governance_copies == 2
    # and from there it follows the log again
    async with pair.primary.client() as c:
        await c.create_handle(f"{PREFIX}/later", [URL])
    assert await pair.loop.pull_once() == 1 and pair.loop.stats.dumps == 2


async def test_a_mirror_at_the_horizon_follows_the_log(pair):  # noqa: F811
    """Pruning what a mirror already has costs it nothing: no dump."""
    primary = pair.primary.node
    await _clock_after_the_log(pair)
    await pair.loop.pull_once()
    async with pair.primary.client() as c:
        await c.create_handle(f"{PREFIX}/seen", [URL])
    await pair.loop.pull_once()
    pair.primary.clock.advance(40 * DAY)
    async with pair.primary.client() as c:
        await c.create_handle(f"{PREFIX}/new", [URL])
    report = await prune(primary.store, now=primary.runtime.clock(), keep_days=30)
    assert report.transactions > 0
    assert await pair.loop.pull_once() == 1 and pair.loop.stats.dumps == 1
    assert await pair.same(f"{PREFIX}/new")


def test_the_prune_command(tmp_path, monkeypatch):
    """``idnode prune-log DIR``: the node's [replication] keep_log_days, or --keep-days, at
    the command's clock (here a fixed one far after the node's entries)."""
    from idnode.cli import app
    from idnode.replication import cli as replication_cli
    from idnode.runtime import fixed

    runner = CliRunner()
    directory = tmp_path / "p"
    assert runner.invoke(app, ["init", str(directory), "--prefix", "20.500.9"]).exit_code == 0
    monkeypatch.setattr(replication_cli, "RUNTIME", fixed(wall=4_000_000_000.0))
    got = runner.invoke(app, ["prune-log", str(directory), "--keep-days", "0"])
    assert got.exit_code == 0 and "keeps its logs" in got.output
    got = runner.invoke(app, ["prune-log", str(directory)])
    assert got.exit_code == 0, got.output
    assert "older than 30 days" in got.output and "transactions" in got.output
    assert "deleted 0 " not in got.output


@pytest.mark.parametrize("days", [-1])
def test_keep_log_days_is_checked(tmp_path, days):
    from idnode.config import ConfigError, load_config
    from idnode.replication.setup import keep_log_days

    (tmp_path / "idnode.toml").write_text(f"[replication]\nkeep_log_days = {days}\n")
    with pytest.raises(ConfigError, match="keep_log_days"):
        keep_log_days(load_config(tmp_path, env={}))


async def test_the_serving_node_prunes_in_the_background(store, clock):  # noqa: F811
    """``LogPruner`` (started by ``NodeApp.start`` in worker 0) prunes at the runtime clock."""
    import asyncio

    from idnode.replication.retention import LogPruner

    for n in range(3):
        await store.create_handle(f"20.500.1/bg-{n}", VALUES)
    clock.now += 40 * DAY
    await store.create_handle("20.500.1/bg-new", VALUES)
    pruner = LogPruner(store, 30, clock, every=0.01)
    pruner.start()
    try:
        async with asyncio.timeout(10):
            while pruner.last is None:
                await asyncio.sleep(0.01)
    finally:
        await pruner.close()
    assert pruner.last.transactions == 3
    assert [t.handle for t in await store.transactions(0, 100)] == ["20.500.1/bg-new"]
    assert LogPruner(store, 0, clock)._task is None  # keep for ever: nothing to run
