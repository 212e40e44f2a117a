"""Enterprise prefixes: application, approval, allocation, suspension, revocation.

``applied`` -> ``approved`` | ``rejected``; ``approved`` -> ``allocated`` (the prefix is live);
``allocated`` <-> ``suspended``; ``allocated`` | ``suspended`` -> ``revoked`` (final).

Only an approved organisation may apply, only for a prefix inside the node's space that follows
the coding rules (``coding.py``), naming the data template its identifiers must follow.
Allocation goes through ``AdminService`` as the node operator: it homes the prefix and writes
its prefix handle ``0.NA/<prefix>`` whose HS_ADMIN is the organisation's admin group, so the
organisation's accounts may create identifiers under it and nobody else may. Allocation is
re-runnable: a half-finished one (store written, registry not) completes on the next try.

A suspended or revoked prefix stays homed (so this node keeps answering for it) but every
identifier under it answers the tombstone code (``lifecycle.py``) and refuses writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idnode.codes import AdminPermission as P
from idnode.errors import HandleAlreadyExists
from idnode.model import HS_ADMIN, NA_PREFIX, HandleValue, handle_key
from idnode.registry.errors import Conflict, NotFound, RegistryError

if TYPE_CHECKING:
    from idnode.registry.service import Registry

APPLIED, APPROVED, REJECTED = "applied", "approved", "rejected"
ALLOCATED, SUSPENDED, REVOKED = "allocated", "suspended", "revoked"
LIVE = (ALLOCATED, SUSPENDED, REVOKED)  # states whose template binds identifiers
# what an organisation's admin group may do on its prefix handle and on its identifiers
PREFIX_RIGHTS = (
    P.ADD_HANDLE | P.DELETE_HANDLE | P.LIST_HANDLES | P.ADD_VALUE | P.MODIFY_VALUE
    | P.REMOVE_VALUE | P.ADD_ADMIN | P.MODIFY_ADMIN | P.REMOVE_ADMIN | P.AUTHORIZED_READ
)  # fmt: skip
RECORD_RIGHTS = PREFIX_RIGHTS & ~(P.ADD_HANDLE | P.LIST_HANDLES)


class Prefixes:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg

    def apply(self, actor: str, prefix: Any, org_id: Any, template: Any) -> dict[str, Any]:
        reg = self.reg
        prefix = reg.rules.check(prefix)
        org = reg.organisations.get(org_id)
        if org["state"] != "approved":
            raise RegistryError(
                f"organisation {org_id} is not approved (state {org['state']})", field="org_id"
            )
        tmpl = reg.catalog.get(template)
        now = int(reg.clock())
        with reg.db.tx() as c:
            old = c.execute("SELECT * FROM prefixes WHERE prefix = ?", (prefix,)).fetchone()
            if old is not None and old["state"] != REJECTED:
                raise Conflict(f"prefix {prefix} is already {old['state']}", field="prefix")
            c.execute("DELETE FROM prefixes WHERE prefix = ?", (prefix,))
            c.execute(
                "INSERT INTO prefixes VALUES (?, ?, ?, ?, '', ?, ?)",
                (prefix, org_id, tmpl.ref, APPLIED, now, now),
            )
            reg.record_state(c, "prefix", prefix, actor, old and old["state"], APPLIED, "")
            after = self._get(c, prefix)
            reg.audit.append(actor, "prefix.apply", prefix, None, after, conn=c)
        return after

    def approve(self, actor: str, prefix: str) -> dict[str, Any]:
        return self._change(actor, prefix, (APPLIED,), APPROVED, "")

    def reject(self, actor: str, prefix: str, reason: str) -> dict[str, Any]:
        return self._change(actor, prefix, (APPLIED,), REJECTED, _reason(reason))

    async def allocate(self, actor: str, prefix: str) -> dict[str, Any]:
        reg = self.reg
        row = self.get(prefix)
        if row["state"] != APPROVED:
            raise RegistryError(f"prefix is {row['state']}, not approved", field="prefix")
        org = reg.organisations.get(row["org_id"])
        group = await reg.accounts.ensure_group(org["credit_code"])
        if not reg.homed.homes_prefix(prefix) or prefix not in await reg.store.homed_prefixes():
            try:
                await reg.admin.home_prefix(reg.operator, prefix)
            except HandleAlreadyExists:
                reg.homed.add(prefix)  # homed by an earlier, interrupted allocation
        admin = reg.admin_value(group, PREFIX_RIGHTS)
        await reg.admin.create_handle(
            reg.operator, NA_PREFIX + prefix, [HandleValue(100, HS_ADMIN, admin)], overwrite=True
        )
        after = self._change(actor, prefix, (APPROVED,), ALLOCATED, "")
        reg.bind(prefix, after["template"], ALLOCATED)
        return after

    def suspend(self, actor: str, prefix: str, reason: str) -> dict[str, Any]:
        after = self._change(actor, prefix, (ALLOCATED,), SUSPENDED, _reason(reason))
        self.reg.bind(prefix, after["template"], SUSPENDED)
        return after

    def reinstate(self, actor: str, prefix: str) -> dict[str, Any]:
        after = self._change(actor, prefix, (SUSPENDED,), ALLOCATED, "")
        self.reg.bind(prefix, after["template"], ALLOCATED)
        return after

    def revoke(self, actor: str, prefix: str, reason: str) -> dict[str, Any]:
        after = self._change(actor, prefix, (ALLOCATED, SUSPENDED), REVOKED, _reason(reason))
        self.reg.bind(prefix, after["template"], REVOKED)
        return after

    def _change(
        self, actor: str, prefix: str, allowed: tuple[str, ...], state: str, reason: str
    ) -> dict[str, Any]:
        reg = self.reg
        with reg.db.tx() as c:
            before = self._get(c, prefix)
            if before is None:
                raise NotFound(f"no application for prefix {prefix}", field="prefix")
            if before["state"] not in allowed:
                raise RegistryError(
                    f"prefix is {before['state']}; {state} needs {' or '.join(allowed)}",
                    field="prefix",
                )
            c.execute(
                "UPDATE prefixes SET state = ?, reason = ?, updated_at = ? WHERE prefix = ?",
                (state, reason, int(reg.clock()), before["prefix"]),
            )
            reg.record_state(c, "prefix", before["prefix"], actor, before["state"], state, reason)
            after = self._get(c, prefix)
            reg.audit.append(actor, f"prefix.{state}", before["prefix"], before, after, conn=c)
        return after

    def get(self, prefix: str) -> dict[str, Any]:
        with self.reg.db.tx() as c:
            row = self._get(c, prefix)
        if row is None:
            raise NotFound(f"no application for prefix {prefix}", field="prefix")
        return row

    def _get(self, c: Any, prefix: str) -> dict[str, Any] | None:
        for row in c.execute("SELECT * FROM prefixes WHERE prefix = ?", (prefix,)):
            return dict(row)
        # prefixes compare case-insensitively, like handles
        for row in c.execute("SELECT * FROM prefixes"):
            if handle_key(row["prefix"]) == handle_key(prefix):
                return dict(row)
        return None

    def list(self, org_id: int | None = None) -> list[dict[str, Any]]:
        if org_id is None:
            rows = self.reg.db.all("SELECT * FROM prefixes ORDER BY prefix")
        else:
            rows = self.reg.db.all(
                "SELECT * FROM prefixes WHERE org_id = ? ORDER BY prefix", (org_id,)
            )
        return [dict(r) for r in rows]

    def history(self, prefix: str) -> list[dict[str, Any]]:
        return self.reg.state_history("prefix", prefix)


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise RegistryError("is required", field="reason")
    return reason.strip()
