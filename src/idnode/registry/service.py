"""The registry of one node: its tables, its sub-services and the hooks it puts into the node.

``attach(node)`` is called by ``open_node``: it opens ``registry.db`` beside the node's files,
and installs three hooks so the rules hold on every path without the transports knowing:

* ``AdminService.record_validator`` -> ``Lifecycle.validate`` (templates, revoked, closed
  prefixes) before every write over the wire, REST, the management API and the CLI;
* ``AdminService.record_observer`` -> ``Lifecycle.observe`` (history + audit) after each write;
* ``Resolver.gate`` -> ``Lifecycle.gate`` (tombstones + the in-memory resolution counter).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idnode.auth.identity import Identity
from idnode.codes import AdminPermission
from idnode.model import NA_PREFIX, handle_key
from idnode.registry.accounts import GROUP_INDEX, Account, Accounts
from idnode.registry.audit import AuditLog
from idnode.registry.coding import CodingRules, load_rules
from idnode.registry.db import DB_NAME, RegistryDB
from idnode.registry.imports import Imports
from idnode.registry.lifecycle import Lifecycle
from idnode.registry.organisations import Organisations
from idnode.registry.prefixes import LIVE, Prefixes
from idnode.registry.stats import Stats
from idnode.registry.templates import Template, TemplateCatalog
from idnode.runtime import Clock, Random
from idnode.service.admin import AdminService
from idnode.service.names import PrefixSet
from idnode.store.base import Store
from idnode.wire.admin import AdminRecord, encode_admin

if TYPE_CHECKING:
    from idnode.service.node import Node

OPERATOR_INDEX = 300
WATCH_INTERVAL = 0.5  # seconds between checks for other processes' registry writes
log = logging.getLogger("idnode.registry")
# Whether ``attach`` starts the statistics flusher and resumes API import jobs: true in a
# serving process; the CLI clears it, so a console command never runs server work.
BACKGROUND = True


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
        clock: Clock,
        random: Random,
        rules: CodingRules | None = None,
        catalog: TemplateCatalog | None = None,
    ) -> None:
        if not node_prefixes:
            raise ValueError("the registry needs a node that homes a prefix")
        self.directory = Path(directory)
        self.node_name = node_name
        self.node_prefix = node_prefixes[0]
        self.operator = Identity(NA_PREFIX + self.node_prefix, OPERATOR_INDEX)
        self.store, self.admin, self.homed = store, admin, homed
        self.clock, self.random = clock, random
        self.rules = rules or load_rules(self.directory, node_prefixes)
        self.catalog = catalog or TemplateCatalog.shipped()
        self.db = RegistryDB(self.directory / DB_NAME)
        self.audit = AuditLog(self.db, clock)
        self.bound: dict[str, Template] = {}  # prefix key -> template of its identifiers
        self.closed_prefixes: dict[str, str] = {}  # prefix key -> suspended | revoked
        # called after any identifier or prefix state changes (here or in a sibling worker):
        # answers cached before the change may be wrong after it (transport/server.py)
        self.state_listeners: list[Callable[[], object]] = []
        self.accounts = Accounts(self)
        self.organisations = Organisations(self)
        self.prefixes = Prefixes(self)
        self.stats = Stats(self)
        self.imports = Imports(self)
        self._load_prefix_states()
        self.lifecycle = Lifecycle(self)
        self._watcher: asyncio.Task | None = None

    def _load_prefix_states(self) -> None:
        self.bound, self.closed_prefixes = {}, {}
        for row in self.db.all("SELECT prefix, template, state FROM prefixes"):
            if row["state"] in LIVE:
                self.bind(row["prefix"], row["template"], row["state"])

    def reload_states(self) -> None:
        """Pick up prefix and identifier states another process (a sibling worker) wrote."""
        self._load_prefix_states()
        self.lifecycle.reload()
        self.states_changed()

    def states_changed(self) -> None:
        for listener in self.state_listeners:
            listener()

    def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Reload states whenever another connection commits to the registry database.

        ``PRAGMA data_version`` changes only on other connections' commits, so with
        ``idnode serve --workers N`` a suspension made through one worker reaches the others
        within ``interval``; a single process never reloads for its own writes.
        """

        version = self.db.one("PRAGMA data_version")[0]  # now: a commit after this counts

        async def loop() -> None:
            nonlocal version
            while True:
                await asyncio.sleep(interval)
                now = self.db.one("PRAGMA data_version")[0]
                if now != version:
                    version = now
                    try:
                        self.reload_states()
                    except Exception:  # a busy file: the next change retries
                        log.exception("registry reload failed")

        self._watcher = asyncio.get_running_loop().create_task(loop())

    # -- shared helpers ---------------------------------------------------------------------
    def bind(self, prefix: str, template_ref: str, state: str) -> None:
        key = handle_key(prefix)
        self.bound[key] = self.catalog.get(template_ref)
        if state in ("suspended", "revoked"):
            self.closed_prefixes[key] = state
        else:
            self.closed_prefixes.pop(key, None)
        self.states_changed()

    def admin_value(self, group: str, rights: AdminPermission) -> bytes:
        return encode_admin(AdminRecord(group, GROUP_INDEX, rights))

    def actor(self, account: Account | None) -> str:
        return "console" if account is None else f"{account.name} ({account.identity})"

    def prefix_row(self, prefix: str) -> dict[str, Any] | None:
        with self.db.tx() as c:
            return self.prefixes._get(c, prefix)

    def record_state(
        self,
        c: sqlite3.Connection,
        kind: str,
        target: str,
        actor: str,
        old: str | None,
        new: str,
        reason: str,
    ) -> None:
        c.execute(
            "INSERT INTO state_changes (kind, target, time, actor, from_state, to_state, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kind, target, int(self.clock()), actor, old, new, reason),
        )

    def state_history(self, kind: str, target: str) -> list[dict[str, Any]]:
        rows = self.db.all(
            "SELECT time, actor, from_state, to_state, reason FROM state_changes"
            " WHERE kind = ? AND target = ? ORDER BY id",
            (kind, target),
        )
        return [dict(r) for r in rows]

    def install(self, admin: AdminService, resolver: Any | None) -> None:
        """Put the hooks into the node's services."""
        admin.record_validator = self.lifecycle.validate
        admin.record_observer = self.lifecycle.observe
        if resolver is not None:
            resolver.gate = self.lifecycle.gate

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        try:
            await self.stats.flush()
        finally:
            self.db.close()


async def attach(node: Node, *, background: bool | None = None) -> Registry | None:
    """Open the registry of ``node`` and hook it in; None for a node without a prefix."""
    cfg = node.config
    if not cfg.node.prefixes:
        return None
    reg = Registry(
        directory=cfg.directory,
        node_name=cfg.node.name,
        node_prefixes=list(cfg.node.prefixes),
        store=node.store,
        admin=node.admin,
        homed=node.homed,
        clock=node.runtime.clock,
        random=node.runtime.random,
    )
    reg.install(node.admin, node.resolver)
    if BACKGROUND if background is None else background:
        reg.stats.start()
        reg.watch()
        for job_id in reg.imports.unfinished(origin="api"):  # resume what a crash stopped
            reg.imports.start(job_id)
    return reg
