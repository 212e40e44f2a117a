"""Control of an approved organisation: suspend, reinstate, edit, dissolve. Its prefixes follow.

* ``approved`` -> ``suspended``: every ``allocated`` prefix of the organisation is suspended
  with it (its identifiers answer the tombstone and refuse writes on every path,
  ``states.py``), and its accounts are refused by the management API while it lasts;
* ``suspended`` -> ``approved`` (reinstate): the prefixes the suspension closed reopen; a
  prefix the operator had suspended on its own stays suspended;
* ``approved`` | ``suspended`` -> ``dissolved`` (final): every live prefix is revoked
  (withdrawn: its identifiers answer the tombstone for good), open prefix applications are
  rejected, and every account of the organisation is disabled (``account_control.py``);
* edit: legal name, contact and documents (the credit code names the organisation's admin
  group and never changes).

The organisation's change, its prefixes' changes, their state-change rows and their audit
entries commit in one transaction, guarded on the states read before, so a concurrent
change refuses the whole step rather than leave an organisation and its prefixes apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from idnode.registry.account_control import AccountControl
from idnode.registry.changes import audit_entry, state_change
from idnode.registry.errors import Conflict, RegistryError
from idnode.registry.organisations import APPROVED, ORG_COLUMNS, _org, check_application
from idnode.registry.prefixes import ALLOCATED, APPLIED, LIVE, REJECTED, REVOKED, SUSPENDED
from idnode.store.effects import Effects, Statement

if TYPE_CHECKING:
    from idnode.registry.accounts import Account
    from idnode.registry.service import Registry

ORG_SUSPENDED, DISSOLVED = "suspended", "dissolved"
SET_ORG = (
    "UPDATE {s}.organisations SET state = ?, reason = ?, updated_at = ? WHERE id = ? AND state = ?"
)


def _marker(org_id: int, what: str) -> str:
    """The prefix reason that says why it changed (reinstating reads it back)."""
    return f"organisation {org_id} {what}"


class OrgControl:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg

    async def suspend(self, by: Account | None, org_id: int, reason: str) -> dict[str, Any]:
        reason = _reason(reason)
        marker = f"{_marker(org_id, 'suspended')}: {reason}"
        return await self._change(by, org_id, (APPROVED,), ORG_SUSPENDED, reason,
                                  {ALLOCATED: (SUSPENDED, marker)})  # fmt: skip

    async def reinstate(self, by: Account | None, org_id: int) -> dict[str, Any]:
        marker = _marker(org_id, "suspended")
        return await self._change(
            by, org_id, (ORG_SUSPENDED,), APPROVED, "", {SUSPENDED: (ALLOCATED, "")},
            only=lambda row: str(row["reason"]).startswith(marker),
        )  # fmt: skip

    async def dissolve(self, by: Account | None, org_id: int, reason: str) -> dict[str, Any]:
        reason = _reason(reason)
        marker = f"{_marker(org_id, 'dissolved')}: {reason}"
        org = await self._change(
            by, org_id, (APPROVED, ORG_SUSPENDED), DISSOLVED, reason,
            {ALLOCATED: (REVOKED, marker), SUSPENDED: (REVOKED, marker),
             APPLIED: (REJECTED, marker), "approved": (REJECTED, marker)},
        )  # fmt: skip
        disabled = await AccountControl(self.reg).disable_all(by, org_id)
        return {**org, "accounts_disabled": disabled}

    async def edit(
        self, by: Account | None, org_id: int, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change the legal name, contact or documents (each checked as an application)."""
        reg = self.reg
        unknown = [k for k in changes if k not in ("legal_name", "contact", "documents")]
        if unknown:
            raise RegistryError("cannot be edited", field=unknown[0])
        if not changes:
            raise RegistryError("nothing to change", field="body")
        before = await reg.organisations.get(org_id)
        if before["state"] == DISSOLVED:
            raise RegistryError("a dissolved organisation cannot be edited", field="org_id")
        merged = {k: changes.get(k, before[k]) for k in ("legal_name", "contact", "documents")}
        name, _, contact, docs = check_application(
            merged["legal_name"], before["credit_code"], merged["contact"], merged["documents"]
        )
        now, actor = reg.now(), reg.actor(by)
        after = {**before, "legal_name": name, "contact": contact, "documents": docs,
                 "updated_at": now}  # fmt: skip
        guard = Statement(
            "UPDATE {s}.organisations SET legal_name = ?, contact = ?, documents = ?,"
            " updated_at = ? WHERE id = ? AND updated_at = ?",
            (name, orjson.dumps(contact).decode(), orjson.dumps(docs).decode(), now, org_id,
             before["updated_at"]),
            expect=1,
            refused=Conflict(f"organisation {org_id} changed meanwhile; try again",
                             field="org_id"),
        )  # fmt: skip
        await reg.store.apply(
            Effects(
                statements=(guard,),
                audit=(audit_entry(actor, "organisation.edit", str(org_id), before, after),),
                target=f"organisation {org_id}",
            )
        )
        return await reg.organisations.get(org_id)

    async def _change(
        self,
        by: Account | None,
        org_id: int,
        allowed: tuple[str, ...],
        state: str,
        reason: str,
        prefix_moves: dict[str, tuple[str, str]],
        only: Any = None,
    ) -> dict[str, Any]:
        reg = self.reg
        before = await reg.organisations.get(org_id)
        if before["state"] not in allowed:
            raise RegistryError(
                f"organisation is {before['state']}; this needs {' or '.join(allowed)}",
                field="org_id",
            )
        actor, now = reg.actor(by), reg.now()
        after = {**before, "state": state, "reason": reason, "updated_at": now}
        effects = Effects(
            statements=(
                Statement(
                    SET_ORG, (state, reason, now, org_id, before["state"]), expect=1,
                    refused=Conflict(f"organisation {org_id} changed meanwhile; try again",
                                     field="org_id"),
                ),
                state_change("organisation", str(org_id), actor, before["state"], state,
                             reason, now),
            ),
            audit=(audit_entry(actor, f"organisation.{state}", str(org_id), before, after),),
            target=f"organisation {org_id}",
        )  # fmt: skip
        moved: list[tuple[dict[str, Any], str]] = []
        for row in await reg.prefixes.list(org_id):
            move = prefix_moves.get(row["state"])
            if move is None or (only is not None and not only(row)):
                continue
            full = await reg.prefixes.get(row["prefix"])
            effects = effects + reg.prefixes.transition(actor, full, (row["state"],), *move)
            moved.append((full, move[0]))
        await reg.store.apply(effects)
        for row, new_state in moved:
            if new_state in LIVE:
                reg.states.set_prefix(row["prefix"], row["template"], new_state)
        org = _org(await reg.store.query_one(ORG_COLUMNS, org_id))
        return {**org, "prefixes": {row["prefix"]: s for row, s in moved}}


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise RegistryError("is required", field="reason")
    return reason.strip()
