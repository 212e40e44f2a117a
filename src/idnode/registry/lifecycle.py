"""Identifier lifecycle (active, suspended, revoked), tombstones and record history.

**Tombstone.** A revoked identifier answers ``HANDLE_NOT_FOUND`` (100) with the message
``revoked: <handle> was revoked on <UTC date>: <reason>`` over UDP, TCP and HTTP (HTTP 404,
JSON ``{"responseCode": 100, "handle": ..., "message": "revoked: ..."}``); a suspended one
answers the same code with ``suspended: ...``. Why code 100 and not a new value: every Handle
client already treats 100 as "do not use this identifier", so no resolver, proxy or cache
ever shows stale data, while the message (which the wire carries in error responses) tells a
person why. The record itself is kept (values are never deleted) and stays readable through
``GET /api/handles/{handle}/history``. Revocation is final; writes to a revoked identifier, or
to anything under a suspended or revoked prefix, are refused on every path.

**History.** Every write through ``AdminService`` (wire, REST, management API) is observed after
it commits: the first observed change also keeps the version it replaced, then each new
version is kept with its actor, time and action. A record nobody has changed since its bulk
import has one version, the current one in the store, so bulk import writes no history rows.

The resolver calls ``gate`` for every request: two dictionary look-ups, no I/O.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from idnode.auth.identity import Identity
from idnode.errors import HandleNotFound, InvalidValue
from idnode.model import HandleValue, handle_key
from idnode.registry.errors import Forbidden, NotFound, RegistryError
from idnode.transport.json_values import value_to_json

if TYPE_CHECKING:
    from idnode.registry.accounts import Account
    from idnode.registry.service import Registry

ACTIVE, SUSPENDED, REVOKED = "active", "suspended", "revoked"


class IdentifierGone(HandleNotFound):
    """The tombstone: a revoked or suspended identifier (code 100 with an explanation)."""


def _date(ts: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class Lifecycle:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.handles: dict[str, tuple[str, str, int]] = {}  # key -> (state, reason, since)
        self.reload()

    def reload(self) -> None:
        """Re-read the states from the registry database (another worker may have changed them)."""
        handles = {}
        for r in self.reg.db.all("SELECT key, state, reason, since FROM lifecycle"):
            if r["state"] != ACTIVE:
                handles[r["key"]] = (r["state"], r["reason"], r["since"])
        self.handles = handles

    # -- hot path -------------------------------------------------------------------------
    def gate(self, handle: str) -> None:
        """Raise the tombstone for a revoked/suspended identifier or prefix; count it."""
        reg = self.reg
        reg.stats.hit(handle)
        if self.handles:
            state = self.handles.get(handle_key(handle))
            if state is not None:
                raise IdentifierGone(
                    f"{state[0]}: {handle} was {state[0]} on {_date(state[2])}: {state[1]}"
                )
        if reg.closed_prefixes and "/" in handle:
            prefix = handle.partition("/")[0]
            closed = reg.closed_prefixes.get(handle_key(prefix))
            if closed is not None:
                raise IdentifierGone(f"{closed}: prefix {prefix} is {closed}")

    # -- the AdminService hooks -------------------------------------------------------------
    def validate(self, handle: str, values: list[HandleValue] | None) -> None:
        """Before every write: lifecycle and template rules (``values`` None: a deletion,
        refused like any write for a revoked identifier or under a closed prefix)."""
        reg = self.reg
        state = self.handles.get(handle_key(handle)) if self.handles else None
        if state is not None and state[0] == REVOKED:
            raise InvalidValue(
                f"{handle} is revoked; a revoked identifier cannot be rewritten or deleted"
            )
        if "/" not in handle:
            return
        prefix_key = handle_key(handle.partition("/")[0])
        closed = reg.closed_prefixes.get(prefix_key)
        if closed is not None:
            raise InvalidValue(f"prefix of {handle} is {closed}; no writes are accepted")
        template = reg.bound.get(prefix_key)
        if template is not None and values is not None:
            template.check_values(values)

    def observe(
        self,
        who: Identity | None,
        action: str,
        handle: str,
        before: list[HandleValue] | None,
        after: list[HandleValue] | None,
    ) -> None:
        """After every committed write: keep the version and write the audit entry."""
        reg = self.reg
        actor = str(who) if who is not None else "anonymous"
        key = handle_key(handle)
        now = int(reg.clock())
        b, a = _record(before), _record(after)
        with reg.db.tx() as c:
            seen = c.execute("SELECT 1 FROM versions WHERE key = ? LIMIT 1", (key,)).fetchone()
            if seen is None and before is not None:
                c.execute(
                    "INSERT INTO versions (key, handle, time, actor, action, record)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (key, handle, _stamp(before, now), "", "original", _dumps(b)),
                )
            c.execute(
                "INSERT INTO versions (key, handle, time, actor, action, record)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, handle, now, actor, action, _dumps(a)),
            )
            reg.audit.append(actor, f"handle.{action}", handle, b, a, conn=c)

    # -- operations -----------------------------------------------------------------------
    async def set_state(
        self, account: Account | None, handle: str, state: str, reason: str
    ) -> dict[str, Any]:
        """Suspend, reactivate or revoke ``handle`` (``account`` None: the local operator)."""
        reg = self.reg
        if state not in (ACTIVE, SUSPENDED, REVOKED):
            raise RegistryError("must be active, suspended or revoked", field="state")
        if state != ACTIVE and (not isinstance(reason, str) or not reason.strip()):
            raise RegistryError("is required", field="reason")
        record = await reg.store.get_handle(handle)
        if record is None:
            raise NotFound(f"handle {handle} not found", field="handle")
        self._authorize(account, handle, state)
        key = handle_key(handle)
        old = self.handles.get(key, (ACTIVE, "", 0))
        if old[0] == REVOKED:
            raise RegistryError(f"{handle} is revoked; revocation is final", field="state")
        actor = reg.actor(account)
        now = int(reg.clock())
        with reg.db.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO lifecycle VALUES (?, ?, ?, ?, ?, ?)",
                (key, handle, state, reason.strip(), now, actor),
            )
            seen = c.execute("SELECT 1 FROM versions WHERE key = ? LIMIT 1", (key,)).fetchone()
            rec = _record(record)
            if seen is None:
                c.execute(
                    "INSERT INTO versions (key, handle, time, actor, action, record)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (key, handle, _stamp(record, now), "", "original", _dumps(rec)),
                )
            c.execute(
                "INSERT INTO versions (key, handle, time, actor, action, record)"
                " VALUES (?, ?, ?, ?, ?, NULL)",
                (key, handle, now, actor, f"lifecycle.{state}"),
            )
            reg.record_state(c, "handle", handle, actor, old[0], state, reason.strip())
            reg.audit.append(
                actor,
                f"handle.{state}",
                handle,
                {"state": old[0]},
                {"state": state, "reason": reason.strip()},
                conn=c,
            )
        if state == ACTIVE:
            self.handles.pop(key, None)
        else:
            self.handles[key] = (state, reason.strip(), now)
        self.reg.states_changed()
        return {"handle": handle, "state": state, "reason": reason.strip(), "since": now}

    def _authorize(self, account: Account | None, handle: str, state: str) -> None:
        if account is None or account.is_operator:
            return
        row = self.reg.prefix_row(handle.partition("/")[0])
        if row is None or row["org_id"] != account.org_id:
            raise Forbidden(f"{account.name} does not administer {handle}", field="handle")
        if state == REVOKED and account.role != "org_admin":
            raise Forbidden("only an organisation admin may revoke", field="state")

    def state_of(self, handle: str) -> dict[str, Any]:
        st = self.handles.get(handle_key(handle))
        if st is None:
            return {"state": ACTIVE}
        return {"state": st[0], "reason": st[1], "since": st[2]}

    async def history(self, handle: str, *, restricted: bool = False) -> dict[str, Any]:
        """Every kept version, oldest first; the store's record when nothing was kept yet."""
        reg = self.reg
        rows = reg.db.all(
            "SELECT time, actor, action, record FROM versions WHERE key = ? ORDER BY id",
            (handle_key(handle),),
        )
        versions = []
        for r in rows:
            values = None if r["record"] is None else orjson.loads(r["record"])
            if values is not None and not restricted:
                values = [v for v in values if v.get("public", True)]
            versions.append(
                {"time": r["time"], "actor": r["actor"], "action": r["action"], "values": values}
            )
        if not versions:
            current = await reg.store.get_handle(handle)
            if current is None:
                raise NotFound(f"handle {handle} not found", field="handle")
            shown = [v for v in current if restricted or v.public_read]
            versions.append(
                {
                    "time": _stamp(current, 0),
                    "actor": "",
                    "action": "current",
                    "values": _record(shown),
                }
            )
        numbered = [{"version": i + 1, **v} for i, v in enumerate(versions)]
        return {"handle": handle, **self.state_of(handle), "versions": numbered}


def _record(values: list[HandleValue] | None) -> list[dict[str, Any]] | None:
    if values is None:
        return None
    return [{**value_to_json(v), "public": v.public_read} for v in values]


def _dumps(obj: Any) -> str | None:
    return None if obj is None else orjson.dumps(obj).decode()


def _stamp(values: list[HandleValue], default: int) -> int:
    return max((v.timestamp for v in values), default=default)
