"""The states every request consults: tombstones, closed prefixes, templates bound to prefixes.

They live in the store (``lifecycle`` and ``prefixes`` tables), written by whichever process
or host made the change. Every process keeps a copy in memory, because the resolution gate
runs on every request and must cost two dictionary look-ups, not a query: the copy is
reloaded when the store announces a change whose ``state_version`` differs from the one
loaded (SQLite: within its poll interval; PostgreSQL: at once, by NOTIFY), and updated
directly by the process that makes a change, so it never reads its own writes late.

**Tombstone.** A revoked identifier answers ``HANDLE_NOT_FOUND`` (100) with the message
``revoked: <handle> was revoked on <UTC date>: <reason>``; a suspended one answers the same
code with ``suspended: ...``. Every Handle client already treats 100 as "do not use this
identifier", while the message (which the wire carries in error responses) tells a person
why. The record itself is kept. Revocation is final; writes to a revoked identifier, or to
anything under a suspended or revoked prefix, are refused on every path.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from idnode.errors import HandleNotFound, InvalidValue
from idnode.model import HandleValue, handle_key
from idnode.names import prefix_part
from idnode.store.governance import GET_META, STATE_VERSION_KEY, day_of

if TYPE_CHECKING:
    from idnode.registry.templates import Template, TemplateCatalog
    from idnode.store.base import Store

log = logging.getLogger("idnode.registry")

ACTIVE, SUSPENDED, REVOKED = "active", "suspended", "revoked"
LIVE_PREFIX_STATES = ("allocated", "suspended", "revoked")  # whose template binds identifiers


class IdentifierGone(HandleNotFound):
    """The tombstone: a revoked or suspended identifier (code 100 with an explanation)."""


class GovernanceStates:
    def __init__(self, catalog: TemplateCatalog) -> None:
        self.catalog = catalog
        self.handles: dict[str, tuple[str, str, int]] = {}  # key -> (state, reason, since)
        self.closed_prefixes: dict[str, str] = {}  # prefix key -> suspended | revoked
        self.bound: dict[str, Template] = {}  # prefix key -> template of its identifiers
        self.version: str | None = None
        # called after any state changes, here or elsewhere: answers cached before the change
        # may be wrong after it (the server's response caches listen)
        self.listeners: list[Callable[[], object]] = []

    # -- loading ------------------------------------------------------------------------------
    async def load(self, store: Store) -> None:
        version = await store.query_value(GET_META, STATE_VERSION_KEY)
        handles = {
            r["key"]: (r["state"], r["reason"], int(r["since"]))
            for r in await store.query(
                "SELECT key, state, reason, since FROM {s}.lifecycle WHERE state <> ?", ACTIVE
            )
        }
        from idnode.registry.custom_templates import load_published

        await load_published(store, self.catalog)  # operators' templates prefixes may name
        bound, closed = {}, {}
        for r in await store.query("SELECT key, template, state FROM {s}.prefixes"):
            if r["state"] in LIVE_PREFIX_STATES:
                bound[r["key"]] = self.catalog.get(r["template"])
                if r["state"] in (SUSPENDED, REVOKED):
                    closed[r["key"]] = r["state"]
        self.handles, self.bound, self.closed_prefixes = handles, bound, closed
        self.version = version
        self.changed()

    async def refresh(self, store: Store) -> bool:
        """Reload if another process changed a state since the last load; whether it did.

        Runs after every commit (``Registry.start``), so the check is a point read, inline
        on SQLite: on the scan thread its hop cost a seventh of a REST create (issue 16)."""
        row = await store.query_point(GET_META, STATE_VERSION_KEY)
        if (None if row is None else row["value"]) == self.version:
            return False
        await self.load(store)
        return True

    def changed(self) -> None:
        for listener in self.listeners:
            try:
                listener()
            except Exception:
                log.exception("state listener failed")

    # -- changes made by this process (the store holds them already) ---------------------------
    def set_handle(self, handle: str, state: str, reason: str, since: int) -> None:
        if state == ACTIVE:
            self.handles.pop(handle_key(handle), None)
        else:
            self.handles[handle_key(handle)] = (state, reason, since)
        self.changed()

    def set_prefix(self, prefix: str, template_ref: str, state: str) -> None:
        key = handle_key(prefix)
        self.bound[key] = self.catalog.get(template_ref)
        if state in (SUSPENDED, REVOKED):
            self.closed_prefixes[key] = state
        else:
            self.closed_prefixes.pop(key, None)
        self.changed()

    # -- the hot path ---------------------------------------------------------------------------
    def gate(self, handle: str) -> None:
        """Raise the tombstone for a revoked/suspended identifier or one under a closed prefix."""
        if self.handles:
            state = self.handles.get(handle_key(handle))
            if state is not None:
                raise IdentifierGone(
                    f"{state[0]}: {handle} was {state[0]} on {day_of(state[2])}: {state[1]}"
                )
        if self.closed_prefixes and "/" in handle:
            prefix = prefix_part(handle)
            closed = self.closed_prefixes.get(handle_key(prefix))
            if closed is not None:
                raise IdentifierGone(f"{closed}: prefix {prefix} is {closed}")

    # -- before every write -----------------------------------------------------------------------
    def check_write(self, handle: str, values: list[HandleValue] | None) -> None:
        """Lifecycle and template rules (``values`` None: a deletion, refused like any write
        for a revoked identifier or under a closed prefix)."""
        state = self.handles.get(handle_key(handle)) if self.handles else None
        if state is not None and state[0] == REVOKED:
            raise InvalidValue(
                f"{handle} is revoked; a revoked identifier cannot be rewritten or deleted"
            )
        if "/" not in handle:
            return
        prefix_key = handle_key(prefix_part(handle))
        self.check_prefix_open(prefix_key, handle)
        template = self.bound.get(prefix_key)
        if template is not None and values is not None:
            template.check_values(values)

    def check_prefix_open(self, prefix_key: str, what: str) -> None:
        closed = self.closed_prefixes.get(prefix_key)
        if closed is not None:
            raise InvalidValue(f"prefix of {what} is {closed}; no writes are accepted")

    def template_of(self, prefix: str) -> Template | None:
        return self.bound.get(handle_key(prefix))


COUNT_WINDOW = 60.0  # seconds in which one client's resolutions of one identifier count once
COUNT_MEMORY = 50_000  # (client, identifier) pairs remembered; the oldest go first


class ResolutionGate:
    """What the resolver calls for every request: counts it for the statistics (flushed by
    ``stats.Stats``), then raises the tombstone if the identifier's state refuses it.

    A resolution counts at most once per client address and identifier in ``COUNT_WINDOW``
    seconds, so one client asking again and again cannot inflate an enterprise's figures
    (docs/governance.md); a resolution with no known client (in-process callers) always
    counts. The pairs seen are remembered in arrival order and forgotten as their window
    ends, at most ``COUNT_MEMORY`` of them (then the oldest are forgotten early, which only
    means a client may count again sooner)."""

    def __init__(
        self,
        states: GovernanceStates,
        clock: Callable[[], float] | None = None,
        *,
        window: float = COUNT_WINDOW,
        memory: int = COUNT_MEMORY,
    ) -> None:
        self.states = states
        self.pending: dict[str, int] = {}  # prefix -> resolutions not yet flushed
        self.clock = clock  # monotonic seconds; None: count every resolution
        self.window = window
        self.memory = memory
        self._seen: OrderedDict[str, float] = OrderedDict()  # "client identifier" -> until
        self._oldest_until = math.inf  # when the oldest pair's window ends: nothing before

    def __call__(self, handle: str, client: str = "") -> None:
        if not client or self.clock is None or self._first(client, handle):
            prefix = handle.partition("/")[0]  # (prefix_part, on every resolution)
            self.pending[prefix] = self.pending.get(prefix, 0) + 1
        self.states.gate(handle)

    def _first(self, client: str, handle: str) -> bool:
        """Whether ``client`` has not resolved ``handle`` within the window (and note it)."""
        now = self.clock()  # type: ignore[misc]
        seen = self._seen
        if now >= self._oldest_until:  # forget pairs whose window has ended (in time order)
            while seen:
                key, until = next(iter(seen.items()))
                if until > now:
                    break
                del seen[key]
            self._oldest_until = next(iter(seen.values())) if seen else math.inf
        key = client + " " + handle_key(handle)
        if key in seen:
            return False
        until = seen[key] = now + self.window
        if len(seen) > self.memory:
            seen.popitem(last=False)
            self._oldest_until = next(iter(seen.values()))
        elif until < self._oldest_until:
            self._oldest_until = until  # (the first pair since seen was empty)
        return True

    def take(self) -> dict[str, int]:
        """The counts so far, and start again from zero."""
        pending, self.pending = self.pending, {}
        return pending
