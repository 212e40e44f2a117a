"""Identifier lifecycle (active, suspended, revoked) and the record history.

The states and their tombstones are ``states.py`` (what every request consults); the kept
versions are written by the registry's write policy (``policy.py``). This module changes a
state, in one transaction with its history entry, its state change and its audit entry, and
reads the history back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idnode.codes import AdminPermission as P
from idnode.model import HandleValue, handle_key
from idnode.names import prefix_part
from idnode.registry.accounts import HANDLE_ADMIN
from idnode.registry.changes import audit_entry, state_change
from idnode.registry.errors import Forbidden, NotFound, RegistryError
from idnode.registry.policy import newest
from idnode.registry.states import ACTIVE, REVOKED, SUSPENDED
from idnode.store.effects import Effects, Statement, Version
from idnode.wire.json import value_to_json

if TYPE_CHECKING:
    from idnode.registry.accounts import Account
    from idnode.registry.service import Registry

UPSERT_STATE = (
    "INSERT INTO {s}.lifecycle (key, handle, state, reason, since, actor) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET handle = excluded.handle, state = excluded.state,"
    " reason = excluded.reason, since = excluded.since, actor = excluded.actor"
)


class Lifecycle:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg

    async def set_state(
        self, account: Account | None, handle: str, state: str, reason: str
    ) -> dict[str, Any]:
        """Suspend, reactivate or revoke ``handle`` (``account`` None: the local operator)."""
        reg = self.reg
        if state not in (ACTIVE, SUSPENDED, REVOKED):
            raise RegistryError("must be active, suspended or revoked", field="state")
        if state != ACTIVE and (not isinstance(reason, str) or not reason.strip()):
            raise RegistryError("is required", field="reason")
        reason = reason.strip() if isinstance(reason, str) else ""
        record = await reg.store.get_handle(handle)
        if record is None:
            raise NotFound(f"handle {handle} not found", field="handle")
        await self._authorize(account, handle, state, record)
        old = reg.states.handles.get(handle_key(handle), (ACTIVE, "", 0))
        if old[0] == REVOKED:
            raise RegistryError(f"{handle} is revoked; revocation is final", field="state")
        actor, now = reg.actor(account), reg.now()
        await reg.store.apply(
            Effects(
                statements=(
                    Statement(UPSERT_STATE, (handle_key(handle), handle, state, reason, now,
                                             actor)),
                    state_change("handle", handle, actor, old[0], state, reason, now),
                ),
                versions=(
                    Version(handle, "original", "", tuple(record), time=newest(record, now),
                            first_only=True),
                    Version(handle, f"lifecycle.{state}", actor, None),
                ),
                audit=(audit_entry(actor, f"handle.{state}", handle, {"state": old[0]},
                                   {"state": state, "reason": reason}),),
                states_changed=True,
                target=handle,
            )
        )  # fmt: skip
        reg.states.set_handle(handle, state, reason, now)
        return {"handle": handle, "state": state, "reason": reason, "since": now}

    async def _authorize(
        self, account: Account | None, handle: str, state: str, record: list[HandleValue]
    ) -> None:
        if account is None or account.is_operator:
            return
        if account.role == HANDLE_ADMIN:  # a Handle identity: the record's HS_ADMIN decides
            needed = P.DELETE_HANDLE if state == REVOKED else P.MODIFY_VALUE
            if not await self.reg.admin.acl.is_admin(account.identity, record, needed):
                raise Forbidden(f"{account.name} does not administer {handle}", field="handle")
            return
        row = await self.reg.prefixes.row(prefix_part(handle))
        if row is None or row["org_id"] != account.org_id:
            raise Forbidden(f"{account.name} does not administer {handle}", field="handle")
        if state == REVOKED and account.role != "org_admin":
            raise Forbidden("only an organisation admin may revoke", field="state")

    def state_of(self, handle: str) -> dict[str, Any]:
        st = self.reg.states.handles.get(handle_key(handle))
        if st is None:
            return {"state": ACTIVE}
        return {"state": st[0], "reason": st[1], "since": st[2]}

    async def history(self, handle: str, *, restricted: bool = False) -> dict[str, Any]:
        """Every kept version, oldest first; the store's record when nothing was kept yet.
        Values without PUBLIC_READ are shown only to ``restricted`` readers."""
        reg = self.reg
        versions = [
            {"time": k.time, "actor": k.actor, "action": k.action,
             "values": None if k.values is None else _shown(k.values, restricted)}
            for k in await reg.store.history(handle)
        ]  # fmt: skip
        if not versions:
            current = await reg.store.get_handle(handle)
            if current is None:
                raise NotFound(f"handle {handle} not found", field="handle")
            versions.append(
                {
                    "time": newest(current),
                    "actor": "",
                    "action": "current",
                    "values": _shown(current, restricted),
                }  # fmt: skip
            )
        numbered = [{"version": i + 1, **v} for i, v in enumerate(versions)]
        return {"handle": handle, **self.state_of(handle), "versions": numbered}


def _shown(values: list[HandleValue], restricted: bool) -> list[dict[str, Any]]:
    return [
        {**value_to_json(v), "public": v.public_read} for v in values if restricted or v.public_read
    ]
