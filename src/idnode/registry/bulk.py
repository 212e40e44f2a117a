"""Recall and bulk state changes by query: suspend, reactivate or revoke every identifier a
search matches (``search.py``), e.g. every identifier of batch B.

A dry run answers how many identifiers the query matches and how many would change (those
already in the wanted state, and revoked ones, which stay revoked, are left out). A real run
changes them all in **one** transaction: each identifier's lifecycle row, its state-change
row and its history versions (as ``lifecycle.py`` writes for one identifier), and **one**
audit entry for the whole change whose after-digest covers the sorted list of identifiers
changed. At most ``MAX_BULK`` identifiers change at once: a larger recall is split by the
operator into narrower queries (by date range, say) rather than holding the writer for
minutes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idnode.model import handle_key
from idnode.registry.changes import audit_entry, state_change
from idnode.registry.errors import RegistryError
from idnode.registry.lifecycle import UPSERT_STATE
from idnode.registry.policy import newest
from idnode.registry.search import Query, Search
from idnode.registry.states import ACTIVE, REVOKED, SUSPENDED
from idnode.store.effects import Effects, Statement, Version

if TYPE_CHECKING:
    from idnode.registry.accounts import Account
    from idnode.registry.service import Registry

MAX_BULK = 50_000


class BulkStates:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.search = Search(reg)

    async def change(
        self, by: Account | None, q: Query, state: str, reason: str, *, dry_run: bool
    ) -> dict[str, Any]:
        reg = self.reg
        if state not in (ACTIVE, SUSPENDED, REVOKED):
            raise RegistryError("must be active, suspended or revoked", field="state")
        reason = reason.strip() if isinstance(reason, str) else ""
        if state != ACTIVE and not reason:
            raise RegistryError("is required", field="reason")
        if state == REVOKED and by is not None and by.role == "registrar":
            raise RegistryError("only an organisation admin may revoke", field="state", status=403)
        self.search.check(q)
        matched, targets = 0, []
        async for handle in self.search.all_handles(q):
            matched += 1
            current = reg.states.handles.get(handle_key(handle), (ACTIVE, "", 0))[0]
            if current != state and current != REVOKED:
                targets.append((handle, current))
        out = {"query": q.describe(), "state": state, "matched": matched,
               "changes": len(targets), "dry_run": dry_run}  # fmt: skip
        if dry_run or not targets:
            return out
        if len(targets) > MAX_BULK:
            raise RegistryError(
                f"{len(targets)} identifiers match; at most {MAX_BULK} change at once:"
                " narrow the query", field="query", status=413,
            )  # fmt: skip
        actor, now = reg.actor(by), reg.now()
        statements, versions = [], []
        for handle, current in targets:
            record = await reg.store.get_handle(handle) or []
            statements.append(
                Statement(UPSERT_STATE, (handle_key(handle), handle, state, reason, now, actor))
            )
            statements.append(state_change("handle", handle, actor, current, state, reason, now))
            versions.append(Version(handle, "original", "", tuple(record),
                                    time=newest(record, now), first_only=True))  # fmt: skip
            versions.append(Version(handle, f"lifecycle.{state}", actor, None))
        handles = sorted((h for h, _ in targets), key=handle_key)
        entry = audit_entry(actor, f"handle.bulk.{state}",
                            f"{len(handles)} identifiers under {q.prefix}",
                            {"query": q.describe()},
                            {"state": state, "reason": reason, "handles": handles})  # fmt: skip
        await reg.store.apply(
            Effects(
                statements=tuple(statements),
                versions=tuple(versions),
                audit=(entry,),
                states_changed=True,
                target=f"bulk {q.prefix}",
            )  # fmt: skip
        )
        for handle in handles:  # this process's copy; others reload on the announcement
            if state == ACTIVE:
                reg.states.handles.pop(handle_key(handle), None)
            else:
                reg.states.handles[handle_key(handle)] = (state, reason, now)
        reg.states.changed()
        return out
