"""Enterprise prefixes: application, approval, allocation, suspension, revocation.

``applied`` -> ``approved`` | ``rejected``; ``approved`` -> ``allocated`` (the prefix is live);
``allocated`` <-> ``suspended``; ``allocated`` | ``suspended`` -> ``revoked`` (final).

Only an approved organisation may apply, only for a prefix inside the node's space that follows
the coding rules (``coding.py``), naming the data template its identifiers must follow.
Allocation goes through the write service as the node operator: it homes the prefix and
writes its prefix handle ``0.NA/<prefix>`` whose HS_ADMIN is the organisation's admin group,
so the organisation's accounts may create identifiers under it and nobody else may. The
prefix handle and the ``allocated`` state commit in one transaction, guarded: only an
``approved`` application can be allocated, so a prefix delegated to a child node
(``delegated``, set by ``idnode child allocate`` after the same review) is never homed here
and its published HS_SITE is never overwritten.

A suspended or revoked prefix stays homed (so this node keeps answering for it) but every
identifier under it answers the tombstone code (``lifecycle.py``) and refuses writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idnode.codes import AdminPermission as P
from idnode.errors import HandleAlreadyExists
from idnode.model import HS_ADMIN, NA_PREFIX, HandleValue, handle_key
from idnode.registry.changes import audit_entry, state_change
from idnode.registry.errors import Conflict, NotFound, RegistryError
from idnode.store.effects import Effects, Statement

if TYPE_CHECKING:
    from idnode.registry.service import Registry

APPLIED, APPROVED, REJECTED = "applied", "approved", "rejected"
ALLOCATED, SUSPENDED, REVOKED = "allocated", "suspended", "revoked"
DELEGATED = "delegated"  # allocated to a child node that homes it (hierarchy)
LIVE = (ALLOCATED, SUSPENDED, REVOKED)  # states whose template binds identifiers here
# what an organisation's admin group may do on its prefix handle and on its identifiers
PREFIX_RIGHTS = (
    P.ADD_HANDLE | P.DELETE_HANDLE | P.LIST_HANDLES | P.ADD_VALUE | P.MODIFY_VALUE
    | P.REMOVE_VALUE | P.ADD_ADMIN | P.MODIFY_ADMIN | P.REMOVE_ADMIN | P.AUTHORIZED_READ
)  # fmt: skip
RECORD_RIGHTS = PREFIX_RIGHTS & ~(P.ADD_HANDLE | P.LIST_HANDLES)


PREFIX_ROW = "SELECT * FROM {s}.prefixes WHERE key = ?"
SET_STATE = "UPDATE {s}.prefixes SET state = ?, reason = ?, updated_at = ? WHERE key = ?"


class Prefixes:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg

    async def apply(self, actor: str, prefix: Any, org_id: Any, template: Any) -> dict[str, Any]:
        reg = self.reg
        prefix = reg.rules.check(prefix)
        org = await reg.organisations.get(org_id)
        if org["state"] != "approved":
            raise RegistryError(
                f"organisation {org_id} is not approved (state {org['state']})", field="org_id"
            )
        tmpl = reg.catalog.get(template)
        now, key = reg.now(), handle_key(prefix)
        async with reg.store.atomic("registry", f"prefix {prefix}") as tx:
            old = await tx.fetchrow(PREFIX_ROW, key)
            if old is not None and old["state"] != REJECTED:
                raise Conflict(f"prefix {prefix} is already {old['state']}", field="prefix")
            await tx.execute("DELETE FROM {s}.prefixes WHERE key = ?", key)
            await tx.execute(
                "INSERT INTO {s}.prefixes (key, prefix, org_id, template, state, reason,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, '', ?, ?)",
                key, prefix, org_id, tmpl.ref, APPLIED, now, now,
            )  # fmt: skip
            after = await tx.fetchrow(PREFIX_ROW, key)
            old_state = old["state"] if old else None
            await tx.apply(
                Effects(
                    statements=(state_change("prefix", prefix, actor, old_state, APPLIED, "",
                                             now),),
                    audit=(audit_entry(actor, "prefix.apply", prefix, None, after),),
                )
            )  # fmt: skip
        return _public(after)

    async def approve(self, actor: str, prefix: str) -> dict[str, Any]:
        return await self._change(actor, prefix, (APPLIED,), APPROVED, "")

    async def reject(self, actor: str, prefix: str, reason: str) -> dict[str, Any]:
        return await self._change(actor, prefix, (APPLIED,), REJECTED, _reason(reason))

    async def allocate(self, actor: str, prefix: str) -> dict[str, Any]:
        reg = self.reg
        row = await self.get(prefix)
        if row["state"] != APPROVED:
            raise RegistryError(f"prefix is {row['state']}, not approved", field="prefix")
        org = await reg.organisations.get(row["org_id"])
        group = await reg.accounts.ensure_group(org["credit_code"])
        homed_here = False
        if not reg.homed.homes_prefix(prefix) or prefix not in await reg.store.homed_prefixes():
            still_approved = Statement(
                "UPDATE {s}.prefixes SET updated_at = updated_at WHERE key = ? AND state = ?",
                (row["key"], APPROVED),
                expect=1,
                refused=Conflict(f"prefix {prefix} changed meanwhile; try again", field="prefix"),
            )
            try:
                await reg.admin.home_prefix(
                    reg.operator, prefix, extra=Effects(statements=(still_approved,))
                )
                homed_here = True
            except HandleAlreadyExists:
                reg.homed.add(prefix)  # homed by an earlier, interrupted allocation
        admin = reg.admin_value(group, PREFIX_RIGHTS)
        change = self.transition(actor, row, (APPROVED,), ALLOCATED, "")
        try:
            await reg.admin.create_handle(
                reg.operator,
                NA_PREFIX + row["prefix"],
                [HandleValue(100, HS_ADMIN, admin)],
                overwrite=True,
                extra=change,
            )
        except Conflict:  # delegated to a child between the two steps: do not keep it homed
            if homed_here:
                await reg.admin.unhome_prefix(reg.operator, prefix)
            raise
        reg.states.set_prefix(row["prefix"], row["template"], ALLOCATED)
        return _public(await self.get(prefix))

    async def suspend(self, actor: str, prefix: str, reason: str) -> dict[str, Any]:
        return await self._change(actor, prefix, (ALLOCATED,), SUSPENDED, _reason(reason))

    async def reinstate(self, actor: str, prefix: str) -> dict[str, Any]:
        return await self._change(actor, prefix, (SUSPENDED,), ALLOCATED, "")

    async def revoke(self, actor: str, prefix: str, reason: str) -> dict[str, Any]:
        return await self._change(actor, prefix, (ALLOCATED, SUSPENDED), REVOKED, _reason(reason))

    def transition(
        self, actor: str, before: dict[str, Any], allowed: tuple[str, ...], state: str, reason: str
    ) -> Effects:
        """The effects of one state change, guarded: the row must still be in ``before``'s
        state when the transaction commits, or the whole change is refused."""
        if before["state"] not in allowed:
            raise RegistryError(
                f"prefix is {before['state']}; {state} needs {' or '.join(allowed)}",
                field="prefix",
            )
        now, prefix = self.reg.now(), before["prefix"]
        after = {**before, "state": state, "reason": reason, "updated_at": now}
        guard = Statement(
            SET_STATE + " AND state = ?",
            (state, reason, now, before["key"], before["state"]),
            expect=1,
            refused=Conflict(f"prefix {prefix} changed meanwhile; try again", field="prefix"),
        )
        return Effects(
            statements=(guard, state_change("prefix", prefix, actor, before["state"], state,
                                            reason, now)),
            audit=(audit_entry(actor, f"prefix.{state}", prefix, before, after),),
            states_changed=state in LIVE,
            target=f"prefix {prefix}",
        )  # fmt: skip

    async def _change(
        self, actor: str, prefix: str, allowed: tuple[str, ...], state: str, reason: str
    ) -> dict[str, Any]:
        before = await self.get(prefix)
        await self.reg.store.apply(self.transition(actor, before, allowed, state, reason))
        if state in LIVE:
            self.reg.states.set_prefix(before["prefix"], before["template"], state)
        return _public(await self.get(prefix))

    async def row(self, prefix: str) -> dict[str, Any] | None:
        return await self.reg.store.query_one(PREFIX_ROW, handle_key(prefix))

    async def get(self, prefix: str) -> dict[str, Any]:
        row = await self.row(prefix)
        if row is None:
            raise NotFound(f"no application for prefix {prefix}", field="prefix")
        return row

    async def list(self, org_id: int | None = None) -> list[dict[str, Any]]:
        if org_id is None:
            rows = await self.reg.store.query("SELECT * FROM {s}.prefixes ORDER BY key")
        else:
            rows = await self.reg.store.query(
                "SELECT * FROM {s}.prefixes WHERE org_id = ? ORDER BY key", org_id
            )
        return [_public(r) for r in rows]

    async def history(self, prefix: str) -> list[dict[str, Any]]:
        row = await self.get(prefix)
        return await self.reg.state_history("prefix", row["prefix"])


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A prefix row as the API shows it (the lookup key is the store's business)."""
    return {k: v for k, v in row.items() if k != "key"}


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise RegistryError("is required", field="reason")
    return reason.strip()
