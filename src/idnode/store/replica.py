"""Resolution from a PostgreSQL streaming replica (``[store] read_url``).

Scale-out on one PostgreSQL cluster: writes and everything that reads in order to write
(the write service's checks, the registry) go to the primary; the resolver reads records
from a hot standby that replays the primary's WAL, so reads add no load to the primary.

A standby lags, and NOTIFY is not replayed on it. A response cache cleared by the primary's
announcement could refill from the standby *before* it replayed the write and keep a stale
answer, so caches subscribe here: an announcement of serial S is passed on only once the
replica's own transaction log has S (or after ``max_wait``, with a warning). ``lag`` gives
the transactions and WAL bytes the replica is behind, for ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from idnode.background import stop_task
from idnode.store.base import SerialCallback, Store

log = logging.getLogger(__name__)

REPLAY_BYTES = (
    "SELECT coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)"
    " AS behind"
)


@dataclass
class ReadReplica:
    primary: Store
    replica: Store  # the same schema on the standby; only read
    poll: float = 0.005  # seconds between checks of the replica's serial while waiting
    max_wait: float = 5.0
    _callbacks: list[SerialCallback] = field(default_factory=list)
    _wanted: int = 0
    _task: asyncio.Task[None] | None = None

    async def subscribe(self, callback: SerialCallback) -> None:
        if not self._callbacks:
            await self.primary.subscribe(self._announced)
        self._callbacks.append(callback)

    def _announced(self, serial: int) -> None:
        self._wanted = max(self._wanted, serial)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._deliver())

    async def _deliver(self) -> None:
        """Pass announcements on once the replica has replayed them, newest first."""
        while True:
            wanted = self._wanted
            waited = 0.0
            while await self.replica.serial() < wanted and waited < self.max_wait:
                await asyncio.sleep(self.poll)
                waited += self.poll
            if waited >= self.max_wait:
                log.warning("read replica is more than %gs behind serial %d", waited, wanted)
            for callback in self._callbacks:
                callback(wanted)
            if self._wanted == wanted:
                return

    async def lag(self) -> tuple[int, int]:
        """(transactions, WAL bytes) the replica has not replayed."""
        behind = max(0, await self.primary.serial() - await self.replica.serial())
        wal = int(await self.replica.query_value(REPLAY_BYTES) or 0)
        return behind, wal

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        await self.replica.close()
