"""Resolution: the one function every transport calls to answer "what is in this handle?"."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from idnode.codes import Permission
from idnode.errors import HandleNotFound, IdnodeError, NotResponsible, ValueNotFound
from idnode.model import HandleValue
from idnode.service.names import PrefixSet, check_handle
from idnode.store.base import Store


@dataclass(frozen=True, slots=True)
class ResolutionQuery:
    """What a client asked for. Empty ``indexes`` and ``types`` mean every value."""

    handle: str
    indexes: tuple[int, ...] = ()
    types: tuple[str, ...] = ()
    public_only: bool = False


def select_values(
    values: list[HandleValue], query: ResolutionQuery, *, may_read_restricted: bool
) -> list[HandleValue]:
    """Apply the index/type filters and the read permissions to a record.

    A value matches when its index is asked for or its type is (RFC 3652 section 3.2: the two
    lists widen, not narrow, the answer). A value without PUBLIC_READ is only ever returned to
    a reader the caller has already authorised, and never when the client asked for public
    values only.
    """
    wanted_index = set(query.indexes)
    out = []
    for v in values:
        if wanted_index or query.types:
            if v.index not in wanted_index and not any(v.matches_type(t) for t in query.types):
                continue
        if not v.public_read and (
            query.public_only
            or not may_read_restricted
            or not v.permissions & Permission.ADMIN_READ
        ):
            continue
        out.append(v)
    return out


class Resolver:
    """Answers resolution queries from one store for the prefixes the node homes."""

    def __init__(
        self,
        store: Store,
        homed: PrefixSet,
        read_check: Callable[[Any, list[HandleValue]], Awaitable[bool]] | None = None,
    ) -> None:
        self.store = store
        self.homed = homed
        # decides whether an authenticated reader may see values without PUBLIC_READ
        self.read_check = read_check
        # registry hook (idnode.registry.lifecycle): counts the request in memory and raises
        # the tombstone for a revoked or suspended identifier; no I/O on this hot path
        self.gate: Callable[[str], None] | None = None
        # hierarchy hook (idnode.hierarchy): counts failed resolutions per prefix for the
        # reports a child sends its parent
        self.on_error: Callable[[str], None] | None = None

    def admits(self, handle: str) -> bool:
        """The gate, for an answer served from a response cache: counts the resolution and
        says False when the identifier's state now refuses it (the full path then answers)."""
        if self.gate is None or not handle:
            return True
        try:
            self.gate(handle)
        except IdnodeError:
            return False
        return True

    async def resolve(self, query: ResolutionQuery, *, reader: Any = None) -> list[HandleValue]:
        """The values of ``query.handle`` that ``reader`` (an Identity, or None) may see."""
        try:
            return await self._resolve(query, reader)
        except IdnodeError:
            if self.on_error is not None:
                self.on_error(query.handle)
            raise

    async def _resolve(self, query: ResolutionQuery, reader: Any) -> list[HandleValue]:
        check_handle(query.handle)
        if not self.homed.responsible_for(query.handle):
            raise NotResponsible(f"this node is not responsible for {query.handle}")
        if self.gate is not None:
            self.gate(query.handle)
        values = await self.store.get_handle(query.handle)
        if values is None:
            raise HandleNotFound(f"handle {query.handle} not found")
        may_read_restricted = False
        if reader is not None and self.read_check is not None and not query.public_only:
            if any(not v.public_read for v in values):
                may_read_restricted = await self.read_check(reader, values)
        selected = select_values(values, query, may_read_restricted=may_read_restricted)
        if not selected and values:
            raise ValueNotFound(f"no values of {query.handle} match the request")
        return selected
