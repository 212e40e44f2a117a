"""Resolution: the one path every transport takes to answer "what is in this handle?".

UDP, TCP, the REST API and the HTTP proxy all call ``Resolver.resolve`` and only translate
what it returns; none of them decides who may read what, or where a handle lives. The answer
is typed, so each transport renders the same decision in its own shape:

* ``Values``: the values to send (from this node's store, or from the recursive resolver);
* ``Referral``: the handle lives at a child this node delegated a prefix to;
* ``NeedsAuth``: the query asks for values only some identities may read, and nobody is
  authenticated yet (the wire challenges, HTTP answers 401).

Everything else that stops a resolution is an ``idnode.errors`` exception, as it always was:
not found (including a lifecycle tombstone), values not found, not responsible, not
authorized, invalid handle.

The stages run in one order for every transport (``Resolver.resolve``): name check, the
lifecycle gate, routing stages (the hierarchy's), the store read, the restricted-read rule.
The gate and the stages are passed to the constructor, never assigned afterwards, so a
``Resolver`` is complete once built and a test can build one from plain functions.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from idnode.codes import Permission
from idnode.errors import HandleNotFound, IdnodeError, NotAuthorized, NotResponsible, ValueNotFound
from idnode.model import HandleValue, PublicAnswer, StoredWire
from idnode.names import PrefixSet, check_handle
from idnode.store.base import Store


@dataclass(frozen=True, slots=True)
class ResolutionQuery:
    """What a client asked for. Empty ``indexes`` and ``types`` mean every value.

    ``public_only``: the PO flag (REST ``publicOnly``): values without PUBLIC_READ are left
    out and never cause a challenge.

    ``omit_unreadable``: restricted values the reader may not read are left out quietly
    instead of refusing the query. Only the REST API's default for an authenticated caller
    that did not say ``publicOnly`` uses it (the caller gets what it may read, as idnode has
    always answered there); the wire and an explicit ``publicOnly=false`` are strict.

    ``do_not_refer``: the DNRF flag (REST ``doNotRefer``): a handle under a delegated prefix
    is refused with SERVER_NOT_RESPONSIBLE instead of answered with a referral.

    ``client``: the asking address, for the gate's statistics (a client counts once per
    identifier per window, so one client cannot inflate them); "" when unknown.
    """

    handle: str
    indexes: tuple[int, ...] = ()
    types: tuple[str, ...] = ()
    public_only: bool = False
    omit_unreadable: bool = False
    do_not_refer: bool = False
    client: str = ""


# -- answers --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Values:
    """The values to answer with, already selected and filtered for the reader.

    ``expiration``: the absolute time (seconds, the node's clock) until which the answer may be
    cached; None for an answer from this node's own store, which the transport dates itself
    (the wire's 12 hours). ``stale``: served from the recursive cache past its TTL because the
    upstream is down (``expiration`` is then already past, so no client caches it).
    """

    values: tuple[HandleValue, ...]
    expiration: int | None = None
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Referral:
    """The handle is served by a child node: where to ask instead (RFC 3652 service referral).

    ``prefix_handle`` is the child's prefix handle (``0.NA/88.123``); ``site_values`` the
    HS_SITE values of the child's service; ``expiration`` as in ``Values``.
    """

    prefix_handle: str
    site_values: tuple[HandleValue, ...]
    expiration: int | None = None


@dataclass(frozen=True, slots=True)
class NeedsAuth:
    """Restricted values were asked for by an anonymous reader: authenticate, then ask again.
    Not an exception, because each transport answers it differently and neither treats it as
    a failure: the wire challenges and answers the same request once the client proves an
    identity; HTTP answers 401 with its challenge headers."""

    reason: str


Answer = Values | Referral | NeedsAuth


class RoutingStage(Protocol):
    """A stage that may answer before this node's store is read (the hierarchy implements it:
    ``idnode.hierarchy.service.HierarchyRouting``).

    ``route`` returns a ``Referral`` for a handle under a prefix delegated to a child, ``Values``
    from the recursive resolver for a handle homed elsewhere, or None to go on locally; it may
    raise ``idnode.errors`` exceptions (a suspended child, DNRF, an upstream failure).
    ``recursion`` is whether the client asked for recursion (the wire's REC flag); a stage may
    recurse without it (the recursive role implies it for every handle it does not home).
    """

    async def route(self, query: ResolutionQuery, *, recursion: bool) -> Answer | None: ...

    def answers_locally(self, handle: str) -> bool:
        """Whether ``route`` returns None for every query of ``handle``, a handle this node
        is responsible for, whatever its flags: then a stored public answer may serve it
        (``Resolver.stored_answer``). A stage without this method never lets one."""
        ...


# -- the restricted-read rule ------------------------------------------------------------------
def select_values(
    values: Sequence[HandleValue], query: ResolutionQuery, *, may_read_restricted: bool
) -> list[HandleValue]:
    """Apply the index/type filters and the read permissions to a record.

    A value matches when its index is asked for or its type is (RFC 3652 section 3.2: the two
    lists widen, not narrow, the answer). A value without PUBLIC_READ is only ever returned to
    a reader the caller has already authorised, and never when the client asked for public
    values only; one without ADMIN_READ either is returned to nobody.
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


ReadCheck = Callable[[Any, Sequence[HandleValue]], Awaitable[bool]]
# a transport's last word on a stored answer (``Resolver.stored_answer``): its rate limit, and
# whether the query asked for public values only
Admit = Callable[[PublicAnswer | StoredWire], bool]  # sees ``restricted`` only
Stored = TypeVar("Stored", PublicAnswer, StoredWire)


async def readable_values(
    record: Sequence[HandleValue],
    query: ResolutionQuery,
    reader: Any,
    read_check: ReadCheck | None,
) -> list[HandleValue] | NeedsAuth:
    """The restricted-read rule, the only place it is written (HSJ ``checkReadAccess``).

    * Nothing restricted is wanted (``public_only``, or the filters match only public
      values): the public values, whoever asks.
    * Restricted values are wanted and nobody is authenticated: ``NeedsAuth``.
    * Restricted values are wanted by a reader ``read_check`` allows (AUTHORIZED_READ in the
      record's HS_ADMIN, or a node operator): all of them.
    * Restricted values are wanted by anyone else: ``NotAuthorized``.

    With ``query.omit_unreadable`` the last two refusals become "the public values only".
    ``read_check`` None allows nobody. Raises nothing else; an empty selection is the
    caller's to judge (``ValueNotFound``).
    """
    public = select_values(record, query, may_read_restricted=False)
    if query.public_only:
        return public
    wanted = select_values(record, query, may_read_restricted=True)
    if all(v.public_read for v in wanted):  # nothing restricted matches: nothing to authorise
        return public
    if reader is not None and read_check is not None and await read_check(reader, record):
        return wanted
    if query.omit_unreadable:
        return public
    if reader is None:
        return NeedsAuth(f"authentication needed to read {query.handle}")
    raise NotAuthorized(f"{reader} may not read the restricted values of {query.handle}")


# -- the resolver ------------------------------------------------------------------------------
class Resolver:
    """Answers resolution queries for the node: its store, its gate, its routing stages.

    ``read_check(reader, record)`` decides whether an authenticated reader may see values
    without PUBLIC_READ (``AdminService.may_read_restricted``). ``gate(handle, client)`` is
    the registry's (``registry.states.ResolutionGate``): it counts the request in memory (once
    per client and identifier per window) and raises the tombstone for a revoked or suspended
    identifier, with no I/O on this hot path.
    ``stages`` may answer before the store is read (``RoutingStage``). ``on_error(handle)`` is
    told of every failed resolution (the hierarchy counts them per prefix for its reports).
    ``reader_quota(reader)`` counts a resolution by an authenticated reader against its quota
    and raises when it is used up (``service.quotas``); anonymous resolutions skip it.
    ``names(name)`` maps a name in another scheme's form (``urn:oid:...``, ``ecode:...``,
    ``gs1:01/...``; ``schemes.registry``) onto the Handle name it stands for, before any
    stage sees it, so every transport accepts those forms and resolves the same record.
    """

    def __init__(
        self,
        store: Store,
        homed: PrefixSet,
        read_check: ReadCheck | None = None,
        gate: Callable[[str, str], None] | None = None,
        *,
        stages: tuple[RoutingStage, ...] = (),
        on_error: Callable[[str], None] | None = None,
        reader_quota: Callable[[Any], Awaitable[None]] | None = None,
        names: Callable[[str], str] | None = None,
    ) -> None:
        self.store = store
        self.names = names
        self.reader_quota = reader_quota
        self.homed = homed
        self.read_check = read_check
        self.gate = gate
        self.stages = stages
        self.on_error = on_error
        # what each stage says of a handle it may leave to the store (``_local_name``);
        # None: a stage that cannot say, so every request goes through ``resolve``
        checks = [getattr(stage, "answers_locally", None) for stage in stages]
        self._local_checks = None if None in checks else tuple(checks)

    def admits(self, handle: str, client: str = "") -> bool:
        """The gate, for an answer served from a response cache: counts the resolution and
        says False when the identifier's state now refuses it (the full path then answers)."""
        mapped = self.gate_name(handle)
        return mapped is not None and self.admits_mapped(mapped, client)

    def gate_name(self, name: str) -> str | None:
        """The name the gate speaks of for a request of ``name`` (its scheme's mapping);
        None when it does not map (the full path refuses it). A cache keeps this with an
        answer, so that a hit costs no mapping (``admits_mapped``)."""
        if self.names is None:
            return name
        try:
            return self.names(name)
        except IdnodeError:
            return None

    def admits_mapped(self, handle: str, client: str = "") -> bool:
        """``admits`` of a name ``gate_name`` has mapped already."""
        gate = self.gate
        if gate is None or not handle:
            return True
        try:
            gate(handle, client)
        except IdnodeError:
            return False
        return True

    # -- the store path of an anonymous, unfiltered resolution --------------------------------
    def stored_answer_now(
        self, name: str, client: str = "", admit: Admit | None = None
    ) -> PublicAnswer | None:
        """The record's stored public answer (``Store.public_answer``) for an anonymous query
        of ``name`` with no index or type, when the store reads it inline; None: ask
        ``resolve``, whose answer it would be anyway.

        The same stages as ``resolve`` in the same order: the name's mapping and checks, this
        node's responsibility, the routing stages (none may route it), the record, the
        caller's ``admit(answer)``, the gate (statistics, tombstones). ``admit`` is where the
        transport spends the client's rate-limit token and applies the rest of the
        restricted-read rule: ``PublicAnswer.restricted`` means a query that did not ask for
        public values only must take ``resolve`` (it is challenged there)."""
        if not self.store.inline_answers:
            return None
        handle = self._local_name(name)
        if handle is None:
            return None
        return self._admitted(handle, client, self.store.public_answer_now(handle), admit)

    def stored_wire_now(
        self, name: str, client: str = "", admit: Admit | None = None
    ) -> StoredWire | None:
        """``stored_answer_now`` for the wire (UDP and TCP): the stored answer's wire half
        (``Store.public_wire_now``), by the same stages in the same order."""
        if not self.store.inline_answers:
            return None
        handle = self._local_name(name)
        if handle is None:
            return None
        return self._admitted(handle, client, self.store.public_wire_now(handle), admit)

    async def stored_answer(
        self, name: str, client: str = "", admit: Admit | None = None
    ) -> PublicAnswer | None:
        """``stored_answer_now`` for every store (a read that may wait, PostgreSQL's)."""
        handle = self._local_name(name)
        if handle is None:
            return None
        return self._admitted(handle, client, await self.store.public_answer(handle), admit)

    def _local_name(self, name: str) -> str | None:
        """The handle ``name`` stands for when this node answers it from its own store with
        no stage in between; None for anything ``resolve`` must judge."""
        try:
            handle = check_handle(self.names(name) if self.names is not None else name)
        except IdnodeError:
            return None
        checks = self._local_checks
        if checks is None or not self.homed.responsible_for(handle):
            return None
        for answers_locally in checks:
            if not answers_locally(handle):
                return None
        return handle

    def _admitted(
        self, handle: str, client: str, answer: Stored | None, admit: Admit | None
    ) -> Stored | None:
        if answer is None or (admit is not None and not admit(answer)):
            return None  # (resolve then runs the gate, once)
        if self.gate is not None:
            try:
                self.gate(handle, client)
            except IdnodeError:
                return None  # a tombstone: resolve refuses it, with its own error
        return answer

    async def resolve(
        self, query: ResolutionQuery, *, reader: Any = None, recursion: bool = False
    ) -> Answer:
        """The answer to ``query`` for ``reader`` (an Identity, or None when anonymous).

        ``recursion``: the client asked this node to resolve a handle it does not home (the
        wire's REC flag); the routing stages decide whether to honour it.
        """
        try:
            if self.names is not None:
                mapped = self.names(query.handle)
                if mapped != query.handle:
                    query = replace(query, handle=mapped)
            return await self._resolve(query, reader, recursion)
        except IdnodeError:
            if self.on_error is not None:
                self.on_error(query.handle)
            raise

    async def _resolve(self, query: ResolutionQuery, reader: Any, recursion: bool) -> Answer:
        handle = check_handle(query.handle)
        if reader is not None and self.reader_quota is not None:
            await self.reader_quota(reader)  # 603 once the reader's requests are used up
        responsible = self.homed.responsible_for(handle)
        # the gate speaks for identifiers this node governs: a handle homed elsewhere is
        # neither tombstoned nor counted in this node's statistics (which go up the tree)
        if responsible and self.gate is not None:
            self.gate(handle, query.client)
        for stage in self.stages:
            routed = await stage.route(query, recursion=recursion)
            if routed is not None:
                return routed
        if not responsible:
            raise NotResponsible(f"this node is not responsible for {handle}")
        record = await self.store.get_handle(handle)
        if record is None:
            raise HandleNotFound(f"handle {handle} not found")
        selected = await readable_values(record, query, reader, self.read_check)
        if isinstance(selected, NeedsAuth):
            return selected
        if not selected and record:
            raise ValueNotFound(f"no values of {handle} match the request")
        return Values(tuple(selected))
