"""The registry of one node: governance over the node's own store.

Everything it knows (organisations, accounts, prefixes, lifecycle, history, audit,
statistics, import jobs) lives in the store beside the identifiers, so every worker and
every host on the same database sees one truth, and a change commits with what it causes.
Its rules reach every write through the write service's policy (``policy.py``), built by
the composition root (``idnode.app``) before the write service; the resolution gate reads
``states.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from idnode.auth.identity import Identity
from idnode.codes import AdminPermission
from idnode.model import NA_PREFIX
from idnode.names import PrefixSet
from idnode.registry.accounts import GROUP_INDEX, Account, Accounts
from idnode.registry.audit import AuditLog
from idnode.registry.coding import CodingRules, load_rules
from idnode.registry.imports import Imports
from idnode.registry.lifecycle import Lifecycle
from idnode.registry.organisations import Organisations
from idnode.registry.prefixes import Prefixes
from idnode.registry.states import GovernanceStates, ResolutionGate
from idnode.registry.stats import Stats
from idnode.registry.templates import TemplateCatalog
from idnode.runtime import Clock, Random
from idnode.service.admin import AdminService
from idnode.store.base import Store
from idnode.wire.admin import AdminRecord, encode_admin

OPERATOR_INDEX = 300
log = logging.getLogger("idnode.registry")


class Registry:
    def __init__(
        self,
        *,
        directory: Path,
        node_name: str,
        node_prefixes: list[str],
        store: Store,
        admin: AdminService,
        homed: PrefixSet,
        states: GovernanceStates,
        gate: ResolutionGate,
        clock: Clock,
        random: Random,
        rules: CodingRules | None = None,
    ) -> None:
        if not node_prefixes:
            raise ValueError("the registry needs a node that homes a prefix")
        self.directory = Path(directory)
        self.node_name = node_name
        self.node_prefix = node_prefixes[0]
        self.operator = Identity(NA_PREFIX + self.node_prefix, OPERATOR_INDEX)
        self.store, self.admin, self.homed, self.states = store, admin, homed, states
        self.gate = gate
        self.clock, self.random = clock, random
        self.rules = rules or load_rules(self.directory, node_prefixes)
        self.catalog: TemplateCatalog = states.catalog
        self.audit = AuditLog(store)
        self.accounts = Accounts(self)
        self.organisations = Organisations(self)
        self.prefixes = Prefixes(self)
        self.stats = Stats(self)
        self.imports = Imports(self)
        self.lifecycle = Lifecycle(self)
        self._tasks: list[asyncio.Task] = []

    # -- shared helpers ---------------------------------------------------------------------
    def now(self) -> int:
        return int(self.clock())

    def admin_value(self, group: str, rights: AdminPermission) -> bytes:
        return encode_admin(AdminRecord(group, GROUP_INDEX, rights))

    def actor(self, account: Account | None) -> str:
        return "console" if account is None else f"{account.name} ({account.identity})"

    async def state_history(self, kind: str, target: str) -> list[dict[str, Any]]:
        return await self.store.query(
            "SELECT time, actor, from_state, to_state, reason FROM {s}.state_changes"
            " WHERE kind = ? AND target = ? ORDER BY id",
            kind,
            target,
        )

    # -- a serving process's background work -----------------------------------------------
    async def start(self) -> None:
        """Flush statistics, follow state changes other processes make, resume API imports."""
        self.stats.start()
        pending: asyncio.Task | None = None

        def changed(serial: int) -> None:
            nonlocal pending
            if pending is None or pending.done():
                pending = asyncio.get_running_loop().create_task(self._refresh())
                self._tasks.append(pending)

        await self.store.subscribe(changed)
        for job_id in await self.imports.unfinished(origin="api"):  # what a crash stopped
            self.imports.start(job_id)

    async def _refresh(self) -> None:
        try:
            await self.states.refresh(self.store)
        except Exception:  # the next announcement retries
            log.exception("reloading registry states failed")
        finally:
            self._tasks = [t for t in self._tasks if not t.done()]

    async def close(self) -> None:
        for task in [*self._tasks, *self.imports.tasks.values()]:
            task.cancel()
        for task in [*self._tasks, *self.imports.tasks.values()]:
            with contextlib.suppress(BaseException):
                await task
        await self.stats.close()
