"""Keep a process's set of homed prefixes equal to its store's.

Each serving process holds the prefixes it answers for in memory (``PrefixSet``), loaded
when the node opens. A prefix homed or unhomed by another process sharing the store (a
mirror's worker 0 applying the primary's log, HOME_NA answered by another worker or host)
would stay unknown here until a restart, so this follows the store's announcements
(``Store.subscribe``) and reloads the set: one small query per burst of writes, in a task
(announcement callbacks must be quick), never two at once.
"""

from __future__ import annotations

import asyncio
import logging

from idnode.background import stop_task
from idnode.model import handle_key
from idnode.names import PrefixSet
from idnode.store.base import Store

log = logging.getLogger(__name__)


class HomedFollower:
    def __init__(self, store: Store, homed: PrefixSet) -> None:
        self.store, self.homed = store, homed
        self._task: asyncio.Task[None] | None = None
        self._again = False

    async def start(self) -> None:
        await self.store.subscribe(self._announced)

    def _announced(self, serial: int) -> None:
        if self._task is not None and not self._task.done():
            self._again = True  # a write landed while we read: read once more after
            return
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            self._again = False
            try:
                await self.refresh()
            except Exception:  # the next announcement retries
                log.exception("reloading homed prefixes failed")
            if not self._again:
                return

    async def refresh(self) -> None:
        """Make the in-memory set what the store holds."""
        wanted = {handle_key(p) for p in await self.store.homed_prefixes()}
        held = set(self.homed)  # handle keys
        for key in held - wanted:
            self.homed.discard(key)
        for key in wanted - held:
            self.homed.add(key)

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
