"""Retention: how long a node keeps the logs its mirrors follow (docs/replication.md).

Every write appends a row to the transaction log (``txlog``, served by 1001) and every
governance change one to ``repl_changes`` (served by 1100); without pruning both grow for
ever. As HSJ keeps its transaction log for a configured time, a node keeps both for
``[replication] keep_log_days`` days (0: for ever) and deletes what is older: every hour
in the serving process (worker 0, ``LogPruner``) and on demand (``idnode prune-log``). A
mirror whose position is older than what is kept is told to redump (1001) or gets a full
copy (1100), and recovers that way (``service.replication``, the ``replication.pruned*``
horizons).

Deletion runs in bounded batches, each one short store transaction that also moves the
horizon, so a prune never holds the write lock for long and a crash leaves the horizon
exactly at what was deleted. The newest entry of each log is always kept: the SQLite
backup's serial and a full copy's position read them.

``repl_changes`` rows carry no time (the capture triggers run inside the database, which
has no access to the node's clock), so each prune notes ``[time, newest change id]`` in
``meta`` (``replication.change_marks``, local to the node); a change is old once a mark
at or after it is older than the retention. With the hourly prune that errs by at most an
hour on the side of keeping.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from idnode.background import stop_task
from idnode.errors import IdnodeError
from idnode.service.replication import (
    PRUNED_CHANGES_KEY,
    PRUNED_LOG_KEY,
    pruned_changes_of,
    pruned_log_of,
    read_meta,
    set_meta,
)
from idnode.store import capture
from idnode.store.base import Store
from idnode.store.effects import Effects, Statement

log = logging.getLogger(__name__)

DAY = 86_400
DEFAULT_KEEP_DAYS = 30
PRUNE_BATCH = 2000  # rows deleted per store transaction
PRUNE_EVERY = 3600.0  # seconds between prunes of a serving node
MARKS_KEY = "replication.change_marks"  # [[time, newest change id], ...], oldest first

_DELETE_TXNS = "DELETE FROM {s}.txlog WHERE serial > ? AND serial <= ?"
_CHANGE_IDS = "SELECT id FROM {s}.repl_changes WHERE id > ? ORDER BY id LIMIT ?"
_DELETE_CHANGES = "DELETE FROM {s}.repl_changes WHERE id > ? AND id <= ?"


@dataclass
class PruneReport:
    """What one prune deleted, and the longest time one of its transactions took."""

    transactions: int = 0  # transaction-log rows deleted
    changes: int = 0  # governance change rows deleted
    batches: int = 0  # store transactions that deleted them
    longest_batch: float = 0.0  # seconds (0 when no monotonic clock was given)
    log_horizon: int = 0  # the last serial deleted, ever
    change_horizon: int = 0  # the last change id deleted, ever


async def prune(
    store: Store,
    *,
    now: float,
    keep_days: int,
    batch: int = PRUNE_BATCH,
    monotonic: Callable[[], float] | None = None,
) -> PruneReport | None:
    """Delete the log entries older than ``keep_days`` days before ``now`` (the node's clock,
    wall seconds); None when ``keep_days`` is 0 (keep for ever)."""
    if keep_days <= 0:
        return None
    cutoff = now - keep_days * DAY
    report = PruneReport()

    async def run(effects: Effects) -> None:
        started = monotonic() if monotonic is not None else 0.0
        await store.apply(effects, logged=False)  # no log row: pruning is no change to follow
        if monotonic is not None:
            report.longest_batch = max(report.longest_batch, monotonic() - started)
        report.batches += 1

    await _prune_log(store, cutoff, batch, report, run)
    await _prune_changes(store, now, cutoff, batch, report, run)
    if report.transactions or report.changes:
        log.info(
            "replication: pruned %d transactions and %d governance changes older than %d days",
            report.transactions, report.changes, keep_days,
        )  # fmt: skip
    return report


async def _prune_log(
    store: Store,
    cutoff: float,
    batch: int,
    report: PruneReport,
    run: Callable[[Effects], Awaitable[None]],
) -> None:
    """Log rows in serial order up to the first one not older than ``cutoff``: the log is
    in time order, and stopping at the first recent row never leaves a hole in it."""
    horizon, newest = await pruned_log_of(store), await store.serial()
    while True:
        page = await store.transactions(horizon, batch)  # a read: no write lock
        old = []
        for txn in page:
            if txn.timestamp >= cutoff or txn.serial >= newest:
                break
            old.append(txn.serial)
        if not old:
            break
        delete = Statement(_DELETE_TXNS, (horizon, old[-1]))
        await run(Effects(statements=(delete, set_meta(PRUNED_LOG_KEY, str(old[-1])))))
        report.transactions += len(old)
        horizon = old[-1]
        if len(old) < len(page) or len(page) < batch:
            break
    report.log_horizon = horizon


async def _prune_changes(
    store: Store,
    now: float,
    cutoff: float,
    batch: int,
    report: PruneReport,
    run: Callable[[Effects], Awaitable[None]],
) -> None:
    horizon = await pruned_changes_of(store)
    newest = int(await store.query_value(capture.LAST_CHANGE) or 0)
    marks = _marks(await read_meta(store, MARKS_KEY))
    if newest and (not marks or marks[-1][1] < newest):
        marks.append((int(now), newest))
        await run(Effects(statements=(set_meta(MARKS_KEY, json.dumps(marks)),)))
    ripe = [m for m in marks if m[0] <= cutoff]
    target = min(ripe[-1][1], newest - 1) if ripe else 0
    while horizon < target:
        rows = await store.query(_CHANGE_IDS, horizon, batch)
        ids = [int(r["id"]) for r in rows if int(r["id"]) <= target]
        upto = ids[-1] if ids else target
        delete = Statement(_DELETE_CHANGES, (horizon, upto))
        await run(Effects(statements=(delete, set_meta(PRUNED_CHANGES_KEY, str(upto)))))
        report.changes += len(ids)
        horizon = upto
    if ripe:  # marks at or before the horizon have done their work
        left = [m for m in marks if m[1] > horizon]
        await run(Effects(statements=(set_meta(MARKS_KEY, json.dumps(left)),)))
    report.change_horizon = horizon


def _marks(text: str | None) -> list[tuple[int, int]]:
    try:
        items = json.loads(text or "[]")
        return [(int(t), int(i)) for t, i in items]
    except (ValueError, TypeError):
        return []  # unreadable: start again (keeps more, never less)


class LogPruner:
    """``prune`` every ``every`` seconds in a serving node's pulling process (worker 0):
    primaries and mirrors alike, since a mirror's own log is what it serves once promoted."""

    def __init__(
        self,
        store: Store,
        keep_days: int,
        clock: Callable[[], float],
        *,
        every: float = PRUNE_EVERY,
        batch: int = PRUNE_BATCH,
    ) -> None:
        self.store, self.keep_days, self.clock = store, keep_days, clock
        self.every, self.batch = every, batch
        self.last: PruneReport | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self.keep_days > 0:
            self._task = asyncio.create_task(self._run(), name="idnode-log-pruner")

    async def _run(self) -> None:
        while True:
            try:
                self.last = await prune(
                    self.store, now=self.clock(), keep_days=self.keep_days, batch=self.batch
                )
            except IdnodeError as exc:  # the store busy: the next round tries again
                log.warning("replication: pruning the logs failed: %s", exc)
            await asyncio.sleep(self.every)

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
