"""The one write path: create, change, delete, load and list identifiers under the HS_ADMIN
rules, with the policies features gave it at construction.

Every write (the binary protocol, REST, the management API, ``idnode load``, bulk import,
delegation, ``idnode init``) calls these functions with the identity its caller
authenticated, so a permission is decided in one place, every policy check runs, and what a
write causes (history, audit, statistics: ``service.policies``) commits in its transaction.
Rules (RFC 3651 section 3.2.1):

* creating a handle needs ADD_HANDLE from an admin of its prefix handle ``0.NA/<prefix>``;
* every other change to a handle is decided by the handle's own HS_ADMIN values: ADD_VALUE /
  MODIFY_VALUE / REMOVE_VALUE for ordinary values, ADD_ADMIN / MODIFY_ADMIN / REMOVE_ADMIN
  when an HS_ADMIN value is touched, DELETE_HANDLE to delete it;
* listing the handles of a prefix needs LIST_HANDLES from an admin of the prefix handle;
* homing and unhoming prefixes is for the node's operators;
* a value without ADMIN_WRITE cannot be changed by an admin (only PUBLIC_WRITE opens it);
* a secret key (HS_SECKEY) is never public: whatever permissions a write gives it, its
  PUBLIC_READ and PUBLIC_WRITE bits are cleared here, on every path (a REST value sent
  without ``permissions`` would otherwise be world-readable; docs/compatibility.md).

Node operators (the admins of the prefixes the node was initialised with) may do everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from idnode.auth.acl import AccessControl, is_prefix_handle
from idnode.auth.identity import Identity
from idnode.codes import AdminPermission as P
from idnode.codes import Permission
from idnode.errors import (
    AuthenticationNeeded,
    HandleAlreadyExists,
    HandleNotFound,
    InvalidHandle,
    InvalidValue,
    NotAuthorized,
    NotPrimary,
    NotResponsible,
    ValueAlreadyExists,
    ValueNotFound,
)
from idnode.model import HS_ADMIN, HS_SECKEY, NA_PREFIX, HandleValue, handle_key
from idnode.names import NA_PREFIX_KEY, PrefixSet, check_handle, prefix_part
from idnode.runtime import Random, uuid4
from idnode.service.policies import BulkWrite, Write, WritePolicy, combined_effects
from idnode.service.validate import check_record
from idnode.store import capture
from idnode.store.base import RowGroup, Store
from idnode.store.effects import NO_EFFECTS, Effects, Statement
from idnode.store.governance import SET_META


@dataclass
class AdminService:
    store: Store
    homed: PrefixSet
    acl: AccessControl  # holds the node operators, who may do everything
    clock: Callable[[], float]  # stamps every value written
    random: Random  # names of identifiers minted by the node (``create`` with a bare prefix)
    policies: Sequence[WritePolicy] = field(default=())  # checks and effects of features
    # why this node takes no writes (a mirror, or a primary fenced by a promotion); None:
    # it takes them. Replicated changes (``replicate``) are the only writes it then applies.
    refusal: str | None = None

    def _effects(self, write: Write, extra: Effects) -> Effects:
        """Run every policy's check, then gather what the write causes."""
        for policy in self.policies:
            policy.check(write)
        return combined_effects(self.policies, write) + extra

    # -- permission helpers ----------------------------------------------------------------
    def is_operator(self, who: Identity | None) -> bool:
        return who is not None and self.acl.is_operator(who)

    async def _require(
        self,
        who: Identity | None,
        handle: str,
        record: Sequence[HandleValue] | None,
        needed: P,
        what: str,
    ) -> None:
        """Raise unless ``who`` holds ``needed``; ``record`` None means ``handle`` is new."""
        if who is None:
            raise AuthenticationNeeded(f"authentication needed to {what}")
        try:
            await self.acl.authorize(who, handle, needed, record=record)
        except NotAuthorized:
            raise NotAuthorized(f"{who} may not {what}") from None

    async def _record(self, handle: str) -> list[HandleValue]:
        values = await self.store.get_handle(handle)
        if values is None:
            raise HandleNotFound(f"handle {handle} not found")
        return values

    def _check_writable(self) -> None:
        if self.refusal is not None:
            raise NotPrimary(self.refusal)

    def _check_target(self, handle: str) -> str:
        self._check_writable()
        check_handle(handle)
        if not self.homed.responsible_for(handle):
            raise NotResponsible(f"this node is not responsible for {handle}")
        return handle

    def _check_targets(self, handles: Iterable[str]) -> None:
        """``_check_target`` of many handles, responsibility decided once per prefix (it
        depends on the prefix alone, but under 0.NA): a bulk load's are a few prefixes."""
        self._check_writable()
        decided: set[str] = set()
        for handle in handles:
            check_handle(handle)
            prefix = prefix_part(handle)
            if prefix in decided:
                continue
            if not self.homed.responsible_for(handle):
                raise NotResponsible(f"this node is not responsible for {handle}")
            if handle_key(prefix) != NA_PREFIX_KEY:
                decided.add(prefix)

    def _stamp(self, values: Iterable[HandleValue]) -> list[HandleValue]:
        now = int(self.clock())
        return [replace(v, timestamp=now, permissions=_permissions(v)) for v in values]

    async def may_read_restricted(
        self, who: Identity | None, record: Sequence[HandleValue]
    ) -> bool:
        """Whether ``who`` may see values without PUBLIC_READ (AUTHORIZED_READ admins)."""
        if who is None:
            return False
        return self.is_operator(who) or await self.acl.is_admin(
            who, list(record), P.AUTHORIZED_READ
        )

    # -- operations ------------------------------------------------------------------------
    async def create_handle(
        self,
        who: Identity | None,
        handle: str,
        values: Sequence[HandleValue],
        *,
        overwrite: bool = False,
        mint: bool = False,
        extra: Effects = NO_EFFECTS,
    ) -> str:
        """Create ``handle`` (or ``handle`` + a fresh suffix when minting); returns its name.
        ``extra``: more effects for the same transaction (a feature's own bookkeeping)."""
        if mint:  # Handle.Net appends the new suffix to what the client sent: "P/" or "P/base-"
            handle = (handle if "/" in handle else handle + "/") + str(uuid4(self.random))
        self._check_target(handle)
        values = self._stamp(check_record(values))
        existing = await self.store.get_handle(handle)
        if existing is not None:
            if not overwrite:
                raise HandleAlreadyExists(f"handle {handle} already exists")
            await self._require_replace(who, handle, existing, values)
        else:
            if is_prefix_handle(handle):  # a derived prefix: ADD_NA from the parent's admins
                await self._require(who, handle, None, P.ADD_NA, f"add prefix {handle}")
            else:
                what = f"create handles under {prefix_part(handle)}"
                await self._require(who, handle, None, P.ADD_HANDLE, what)
        effects = self._effects(Write(who, "create", handle, existing, values), extra)
        await self.store.create_handle(
            handle, values, overwrite=existing is not None, effects=effects
        )
        return handle

    async def _require_replace(
        self, who: Identity | None, handle: str, old: list[HandleValue], new: list[HandleValue]
    ) -> None:
        old_by = {v.index: v for v in old}
        new_by = {v.index: v for v in new}
        added = [v for i, v in new_by.items() if i not in old_by]
        removed = [v for i, v in old_by.items() if i not in new_by]
        changed = [(old_by[i], v) for i, v in new_by.items() if i in old_by and old_by[i] != v]
        if not (added or removed or changed):  # a same-second rewrite still needs rights
            await self._require(who, handle, old, P.MODIFY_VALUE, f"modify values of {handle}")
        await self._require_add(who, handle, old, added)
        await self._require_remove(who, handle, old, removed)
        await self._require_modify(who, handle, old, changed)

    async def _require_add(self, who, handle, record, values) -> None:
        if any(v.type == HS_ADMIN for v in values):
            await self._require(who, handle, record, P.ADD_ADMIN, f"add admins to {handle}")
        if any(v.type != HS_ADMIN for v in values):
            await self._require(who, handle, record, P.ADD_VALUE, f"add values to {handle}")

    async def _require_remove(self, who, handle, record, values) -> None:
        _writable(values)
        if any(v.type == HS_ADMIN for v in values):
            await self._require(who, handle, record, P.REMOVE_ADMIN, f"remove admins of {handle}")
        if any(v.type != HS_ADMIN for v in values):
            await self._require(who, handle, record, P.REMOVE_VALUE, f"remove values of {handle}")

    async def _require_modify(self, who, handle, record, pairs) -> None:
        _writable([old for old, _ in pairs])
        if any(HS_ADMIN in (old.type, new.type) for old, new in pairs):
            await self._require(who, handle, record, P.MODIFY_ADMIN, f"modify admins of {handle}")
        if any(HS_ADMIN not in (old.type, new.type) for old, new in pairs):
            await self._require(who, handle, record, P.MODIFY_VALUE, f"modify values of {handle}")

    async def delete_handle(
        self, who: Identity | None, handle: str, *, extra: Effects = NO_EFFECTS
    ) -> None:
        self._check_target(handle)
        record = await self._record(handle)
        needed = P.DELETE_NA if is_prefix_handle(handle) else P.DELETE_HANDLE
        await self._require(who, handle, record, needed, f"delete {handle}")
        effects = self._effects(Write(who, "delete", handle, record, None), extra)
        await self.store.delete_handle(handle, effects=effects)

    async def add_values(
        self,
        who: Identity | None,
        handle: str,
        values: Sequence[HandleValue],
        *,
        overwrite: bool = False,
        extra: Effects = NO_EFFECTS,
    ) -> None:
        """Add values; with ``overwrite`` an existing index is replaced instead of refused."""
        self._check_target(handle)
        values = self._stamp(check_record(values))
        if not values:
            raise InvalidValue("no values given")
        record = await self._record(handle)
        old_by = {v.index: v for v in record}
        clashes = [v for v in values if v.index in old_by]
        if clashes and not overwrite:
            raise ValueAlreadyExists(f"{handle} already has a value at index {clashes[0].index}")
        fresh = [v for v in values if v.index not in old_by]
        await self._require_add(who, handle, record, fresh)
        await self._require_modify(who, handle, record, [(old_by[v.index], v) for v in clashes])
        check_record([*record, *fresh])
        by_new = {v.index: v for v in values}
        merged = [by_new.get(v.index, v) for v in record] + fresh
        effects = self._effects(Write(who, "add", handle, record, merged), extra)
        if clashes:
            await self.store.create_handle(handle, merged, overwrite=True, effects=effects)
        else:
            await self.store.add_values(handle, fresh, effects=effects)

    async def modify_values(
        self, who: Identity | None, handle: str, values: Sequence[HandleValue]
    ) -> None:
        self._check_target(handle)
        values = self._stamp(check_record(values))
        if not values:
            raise InvalidValue("no values given")
        record = await self._record(handle)
        old_by = {v.index: v for v in record}
        missing = [v.index for v in values if v.index not in old_by]
        if missing:
            raise ValueNotFound(f"{handle} has no value at index {missing[0]}")
        await self._require_modify(who, handle, record, [(old_by[v.index], v) for v in values])
        by_new = {v.index: v for v in values}
        final = [by_new.get(v.index, v) for v in record]
        effects = self._effects(Write(who, "modify", handle, record, final), NO_EFFECTS)
        await self.store.modify_values(handle, values, effects=effects)

    async def remove_values(
        self, who: Identity | None, handle: str, indexes: Sequence[int]
    ) -> None:
        self._check_target(handle)
        if not indexes:
            raise InvalidValue("no indexes given")
        record = await self._record(handle)
        old_by = {v.index: v for v in record}
        missing = [i for i in indexes if i not in old_by]
        if missing:
            raise ValueNotFound(f"{handle} has no value at index {missing[0]}")
        await self._require_remove(who, handle, record, [old_by[i] for i in indexes])
        final = [v for v in record if v.index not in set(indexes)]
        effects = self._effects(Write(who, "remove", handle, record, final), NO_EFFECTS)
        await self.store.remove_values(handle, list(indexes), effects=effects)

    async def list_handles(
        self, who: Identity | None, prefix: str, *, offset: int = 0, limit: int | None = None
    ) -> tuple[int, list[str]]:
        """(total, page of handles) under ``prefix`` (given bare or as ``0.NA/prefix``)."""
        prefix = prefix[len(NA_PREFIX) :] if handle_key(prefix).startswith("0.NA/") else prefix
        if not prefix or "/" in prefix:
            raise InvalidHandle(f"invalid prefix {prefix!r}")
        if not self.homed.homes_prefix(prefix):
            raise NotResponsible(f"this node does not home prefix {prefix}")
        na = NA_PREFIX + prefix
        admins = await self.store.get_handle(na) or []
        await self._require(who, na, admins, P.LIST_HANDLES, f"list handles under {prefix}")
        total = await self.store.count_handles(prefix)
        return total, await self.store.list_handles(prefix, offset=offset, limit=limit)

    async def list_derived_prefixes(self, who: Identity | None, prefix: str) -> list[str]:
        """Derived prefixes of ``prefix`` that have prefix handles here (``0.NA/prefix.x``)."""
        prefix = prefix[len(NA_PREFIX) :] if handle_key(prefix).startswith("0.NA/") else prefix
        if not self.homed.homes_prefix(prefix):
            raise NotResponsible(f"this node does not home prefix {prefix}")
        na = NA_PREFIX + prefix
        admins = await self.store.get_handle(na) or []
        what = f"list derived prefixes of {prefix}"
        await self._require(who, na, admins, P.LIST_HANDLES, what)
        handles = await self.store.list_handles("0.NA")
        wanted = handle_key(prefix) + "."
        return [
            h[len(NA_PREFIX) :]
            for h in handles
            if handle_key(h[len(NA_PREFIX) :]).startswith(wanted)
        ]

    async def home_prefix(
        self, who: Identity | None, prefix: str, *, extra: Effects = NO_EFFECTS
    ) -> None:
        self._check_writable()
        self._require_operator(who, "home a prefix")
        await self.store.home_prefix(prefix, effects=extra)
        self.homed.add(prefix)

    async def unhome_prefix(
        self, who: Identity | None, prefix: str, *, extra: Effects = NO_EFFECTS
    ) -> None:
        self._check_writable()
        self._require_operator(who, "unhome a prefix")
        await self.store.unhome_prefix(prefix, effects=extra)
        self.homed.discard(prefix)

    def _require_operator(self, who: Identity | None, what: str) -> None:
        if who is None:
            raise AuthenticationNeeded(f"authentication needed to {what}")
        if not self.is_operator(who):
            raise NotAuthorized(f"{who} is not an operator of this node")

    # -- replication (a mirror applying its primary's log; service/replication.py) ------------
    async def replicate(
        self, handle: str, values: Sequence[HandleValue] | None, *, extra: Effects = NO_EFFECTS
    ) -> None:
        """Make ``handle`` what the primary holds: ``values`` whole, or gone (None).

        No permission, template or lifecycle check: the primary made them before it logged
        the change, and the stream that carries it is signed by the primary's key. Idempotent,
        so a transaction applied twice (a pull cut off before its position was kept) is
        harmless; ``extra`` keeps the position in the same transaction."""
        if values is None:
            if await self.store.get_handle(handle) is None:
                if extra:
                    await self.store.apply(extra, logged=False)
                return
            await self.store.delete_handle(handle, effects=extra)
            return
        await self.store.create_handle(handle, list(values), overwrite=True, effects=extra)

    async def replicate_load(
        self,
        records: Sequence[tuple[str, Sequence[HandleValue]]],
        *,
        extra: Effects = NO_EFFECTS,
    ) -> int:
        """Many records (of a dump, or consecutive changes of the log) in one transaction,
        each replacing what is there; the last of a handle given twice wins."""
        return await self.store.load(records, overwrite=True, effects=extra)

    async def replicate_home(
        self, prefix: str, homed: bool, *, extra: Effects = NO_EFFECTS
    ) -> None:
        """Home or unhome ``prefix`` as the primary did (idempotent)."""
        if homed == self.homed.homes_prefix(prefix):
            if extra:
                await self.store.apply(extra, logged=False)
            return
        if homed:
            await self.store.home_prefix(prefix, effects=extra)
            self.homed.add(prefix)
        else:
            await self.store.unhome_prefix(prefix, effects=extra)
            self.homed.discard(prefix)

    async def replicate_governance(
        self, changes: Sequence[capture.Change], *, position: int | None, full: bool = False
    ) -> None:
        """Make governance rows what the primary holds, in one store transaction with the
        mirror's governance position (None: keep it); ``full`` empties the tables first
        (the start of a full copy: the position goes back to 0 until its end)."""
        statements = []  # one Effects: applied in one hop to the store's writer
        if full:
            statements += [Statement(*capture.clear(t)) for t in reversed(capture.TABLES)]
        for table, key, row in capture.ordered(changes):
            if capture.is_local(table, key):
                continue
            if row is None:
                statements.append(Statement(*capture.delete(table, key)))
            else:
                statements.append(Statement(*capture.upsert(table, row)))
        if full or position is not None:
            statements.append(Statement(SET_META, (capture.POSITION_KEY, str(position or 0))))
        effects = Effects(statements=tuple(statements), action="replicate", target="governance")
        await self.store.apply(effects)

    # -- bulk -------------------------------------------------------------------------------
    async def load(
        self,
        who: Identity | None,
        records: Sequence[tuple[str, Sequence[HandleValue]]],
        *,
        overwrite: bool = False,
        extra: Effects = NO_EFFECTS,
    ) -> int:
        """Create many identifiers in one transaction (all or nothing), under the same rules
        as ``create_handle``: each record checked and validated, ADD_HANDLE on each prefix
        (every record, with ``overwrite``, needs an operator). Returns the serial."""
        now = int(self.clock())
        checked = []
        for handle, values in records:
            self._check_target(handle)
            stamped = [
                replace(v, timestamp=now, permissions=_permissions(v)) for v in check_record(values)
            ]
            checked.append((handle, stamped))
        bulk = BulkWrite(who, [h for h, _ in checked], records=checked, overwrite=overwrite)
        effects = await self._bulk_effects(bulk, extra)
        return await self.store.load(checked, overwrite=overwrite, effects=effects)

    async def load_rows(
        self,
        who: Identity | None,
        groups: Sequence[RowGroup],
        *,
        extra: Effects = NO_EFFECTS,
    ) -> int:
        """``load`` of row groups (bulk import's fast path): the same permissions and the
        policies' bulk checks; rows were checked against the template by the importer."""
        handles = [h for g in groups for h, _ in g.rows]
        self._check_targets(handles)
        groups = [
            g
            if all(v.permissions == _permissions(v) for v in g.layout)
            else replace(g, layout=tuple(replace(v, permissions=_permissions(v)) for v in g.layout))
            for g in groups
        ]
        bulk = BulkWrite(who, handles, groups=groups)
        effects = await self._bulk_effects(bulk, extra)
        return await self.store.load_rows(groups, effects=effects)

    async def _bulk_effects(self, bulk: BulkWrite, extra: Effects) -> Effects:
        if bulk.overwrite:
            self._require_operator(bulk.who, "overwrite identifiers in bulk")
        for prefix in sorted({prefix_part(h) for h in bulk.handles}, key=handle_key):
            probe = f"{prefix}/x"
            if is_prefix_handle(probe):
                self._require_operator(bulk.who, "load prefix handles")
            else:
                what = f"create handles under {prefix}"
                await self._require(bulk.who, probe, None, P.ADD_HANDLE, what)
        out = extra
        for policy in self.policies:
            policy.check_bulk(bulk)
            out = out + policy.bulk_effects(bulk)
        return out

    async def require_create(self, who: Identity | None, prefix: str) -> None:
        """Raise unless ``who`` may create identifiers under ``prefix`` (an import checks
        before it queues a job)."""
        what = f"create handles under {prefix}"
        await self._require(who, f"{prefix}/x", None, P.ADD_HANDLE, what)


_PUBLIC = Permission.PUBLIC_READ | Permission.PUBLIC_WRITE


def _permissions(value: HandleValue) -> Permission:
    """The permissions a value is stored with: a secret key's are never public."""
    if value.type == HS_SECKEY and value.permissions & _PUBLIC:
        return Permission(value.permissions & ~_PUBLIC)
    return value.permissions


def _writable(values: Iterable[HandleValue]) -> None:
    for v in values:
        if not v.permissions & (Permission.ADMIN_WRITE | Permission.PUBLIC_WRITE):
            raise NotAuthorized(f"value {v.index} is not writable (no ADMIN_WRITE permission)")
