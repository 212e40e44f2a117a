"""Who may do what: HS_ADMIN values, admin groups (HS_VLIST) and node operators.

RFC 3651 section 3.2.1, as the Handle.Net server applies it:

* An HS_ADMIN value grants its permission bits to the value it references (``index:handle``);
  a reference with index 0 stands for every index of that handle (HSJ ``isMatchedBy``).
  Every needed bit must come from *one* HS_ADMIN value, as in HSJ.
* A referenced value that is an HS_VLIST is a group: its members are admins too, through
  nested groups, up to ``max_depth`` levels, each group visited once (loops end), and at most
  ``max_lookups`` group handles read per check (so a wide group cannot turn one request into
  thousands of reads). Groups are read from this node's store only.
* Operations on an existing handle are governed by that handle's own HS_ADMIN values.
  Creating a handle needs ADD_HANDLE from the admins of its prefix handle ``0.NA/<prefix>``.
  Adding or deleting a derived prefix ``0.NA/20.500.1`` needs ADD_NA / DELETE_NA from the
  admins of the parent prefix handle ``0.NA/20.500``. Listing needs LIST_HANDLES on the
  prefix handle (pass it as ``handle``).
* With ``prefix_admins_inherit`` (the default), an admin of the prefix handle who holds the
  needed bits may also act on existing handles under it (the prefix owner never loses
  control of its namespace; HSJ gives the same reach only to its server admins).
* Node operators (``operators``) may do everything.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final

from idnode.auth.identity import Identity
from idnode.codes import AdminPermission
from idnode.errors import AuthenticationNeeded, IdnodeError, NotAuthorized
from idnode.model import (
    HS_ADMIN,
    HS_PUBKEY,
    HS_SECKEY,
    HS_VLIST,
    NA_PREFIX,
    HandleValue,
    ValueReference,
    handle_key,
)
from idnode.names import NA_PREFIX_KEY, parent_prefix, prefix_part, suffix_part
from idnode.store.base import Store
from idnode.wire.admin import decode_admin
from idnode.wire.vlist import decode_vlist

KEY_TYPES = (HS_PUBKEY, HS_SECKEY)
NA_BITS = AdminPermission.ADD_NA | AdminPermission.DELETE_NA


class _Fetch:
    """Sentinel: read the record from the store (None means "known not to exist")."""

    def __repr__(self) -> str:
        return "FETCH"


FETCH: Final = _Fetch()


def is_prefix_handle(handle: str) -> bool:
    """``0.NA/...``: a prefix handle."""
    return handle_key(handle).startswith(NA_PREFIX) and len(handle) > len(NA_PREFIX)


def governing_prefix_handle(handle: str) -> str:
    """The prefix handle whose admins decide creating ``handle`` (and derived-prefix changes).

    ``20.500.1/abc`` -> ``0.NA/20.500.1``; a derived prefix handle ``0.NA/20.500.1`` ->
    its parent ``0.NA/20.500``; a top-level prefix handle ``0.NA/20`` -> ``0.NA/0.NA``
    (the root's own prefix handle, as HSJ's ``getZeroNAHandle`` gives).
    """
    if is_prefix_handle(handle):
        suffix = suffix_part(handle)
        parent = parent_prefix(suffix) if handle_key(suffix) != NA_PREFIX_KEY else ""
        return NA_PREFIX + (parent or NA_PREFIX_KEY)
    return NA_PREFIX + prefix_part(handle)


class AccessControl:
    """Decides HS_ADMIN permissions against one store."""

    def __init__(
        self,
        store: Store,
        max_depth: int = 8,
        *,
        operators: Iterable[Identity] = (),
        prefix_admins_inherit: bool = True,
        max_lookups: int = 256,
    ) -> None:
        if max_depth < 0 or max_lookups < 0:
            raise ValueError("max_depth and max_lookups must not be negative")
        self.store = store
        self.max_depth = max_depth
        self.max_lookups = max_lookups
        self.operators: frozenset[Identity] = frozenset(operators)
        self.prefix_admins_inherit = prefix_admins_inherit

    def is_operator(self, identity: Identity | None) -> bool:
        return identity is not None and identity in self.operators

    # -- keys ----------------------------------------------------------------------------
    async def key_values(self, identity: Identity) -> HandleValue | None:
        """The identity's own key value (HS_PUBKEY or HS_SECKEY at its index), or None."""
        record = await self.store.get_handle(identity.handle)
        for value in record or ():
            if value.index == identity.index:
                return value if value.type in KEY_TYPES else None
        return None

    async def find_keys(self, handle: str, index: int, key_type: str) -> list[HandleValue]:
        """Key values of ``key_type`` a claimed ``index:handle`` may mean, by index.

        Index 0 is HSJ's "any key of the handle" (clients may send it); the caller tries
        each and builds the Identity from the one that verifies.
        """
        record = await self.store.get_handle(handle) or []
        return [v for v in record if v.type == key_type and index in (0, v.index)]

    # -- HS_ADMIN ------------------------------------------------------------------------
    async def is_admin(
        self,
        identity: Identity,
        admin_values: Sequence[HandleValue],
        needed: AdminPermission,
    ) -> bool:
        """Whether one HS_ADMIN value among ``admin_values`` has every ``needed`` bit and
        names ``identity`` directly or through HS_VLIST groups."""
        needed = AdminPermission(needed)
        groups: list[ValueReference] = []
        for value in admin_values:
            if value.type != HS_ADMIN:
                continue
            try:
                admin = decode_admin(value.data)
            except IdnodeError:
                continue  # a damaged admin value grants nothing (HSJ skips it too)
            if admin.permissions & needed != needed:
                continue
            ref = ValueReference(admin.handle, admin.index)
            if identity.matched_by(ref):
                return True
            groups.append(ref)
        return await self._in_groups(identity, groups)

    async def _in_groups(self, identity: Identity, refs: list[ValueReference]) -> bool:
        """Breadth-first through HS_VLIST values; ``depth`` 0 is a group named by HS_ADMIN."""
        queue: deque[tuple[ValueReference, int]] = deque((r, 0) for r in refs)
        seen: set[tuple[str, int]] = set()
        records: dict[str, list[HandleValue] | None] = {}
        lookups = 0
        while queue:
            ref, depth = queue.popleft()
            key = (handle_key(ref.handle), ref.index)
            if key in seen or ref.index == 0 or depth >= self.max_depth:
                continue  # index 0 names a handle, not one group value (HSJ skips it)
            seen.add(key)
            if key[0] not in records:
                if lookups >= self.max_lookups:
                    return False
                lookups += 1
                records[key[0]] = await self.store.get_handle(ref.handle)
            group = next((v for v in records[key[0]] or () if v.index == ref.index), None)
            if group is None or group.type != HS_VLIST:
                continue
            try:
                members = decode_vlist(group.data)
            except IdnodeError:
                continue
            for member in members:
                if identity.matched_by(member):
                    return True
                queue.append((member, depth + 1))
        return False

    # -- decisions -----------------------------------------------------------------------
    async def authorize(
        self,
        identity: Identity | None,
        handle: str,
        needed: AdminPermission,
        *,
        record: Sequence[HandleValue] | None | _Fetch = FETCH,
        prefix_record: Sequence[HandleValue] | None | _Fetch = FETCH,
    ) -> None:
        """Raise unless ``identity`` may do what needs ``needed`` on ``handle``.

        ``record`` is the handle's values (None: it does not exist, so this is a creation),
        ``prefix_record`` the values of ``governing_prefix_handle(handle)``; either is read
        from the store when not given. Raises ``AuthenticationNeeded`` (402) without an
        identity and ``NotAuthorized`` (400) when the identity lacks the permission.

        ADD_HANDLE on a handle that does not exist is decided by the prefix admins; ADD_NA /
        DELETE_NA always by the parent prefix admins; every other bit by the handle's
        admins, falling back to the prefix admins (``prefix_admins_inherit``).
        """
        needed = AdminPermission(needed)
        if identity is None:
            raise AuthenticationNeeded(f"authentication needed for {handle}")
        if self.is_operator(identity):
            return
        if isinstance(record, _Fetch):
            record = await self.store.get_handle(handle)
        prefix_values: list[HandleValue] | None = None

        async def prefix_admins() -> list[HandleValue]:
            nonlocal prefix_values, prefix_record
            if prefix_values is None:
                if isinstance(prefix_record, _Fetch):
                    prefix_record = await self.store.get_handle(governing_prefix_handle(handle))
                prefix_values = list(prefix_record or ())
            return prefix_values

        na_bits = needed & NA_BITS
        own_bits = needed & ~NA_BITS
        if na_bits and not await self.is_admin(identity, await prefix_admins(), na_bits):
            raise NotAuthorized(f"{identity} lacks {_describe(na_bits)} for {handle}")
        if not own_bits:
            return
        if record is not None and await self.is_admin(identity, list(record), own_bits):
            return
        creating = record is None and own_bits == AdminPermission.ADD_HANDLE
        if (creating or self.prefix_admins_inherit) and await self.is_admin(
            identity, await prefix_admins(), own_bits
        ):
            return
        raise NotAuthorized(f"{identity} lacks {_describe(own_bits)} for {handle}")


def _describe(bits: AdminPermission) -> str:
    names = [p.name for p in AdminPermission if p & bits and p.name]
    return "+".join(names) + (" permission" if len(names) == 1 else " permissions")
