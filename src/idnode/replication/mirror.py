"""A mirror's pull loop: follow a primary's transaction log, dumping first when needed.

Each round asks the configured sources for their next txn id (OC_GET_NEXT_TXN_ID, no
authentication), keeps those not behind our own epoch, highest epoch first (a promoted
mirror outranks a primary that came back), then pulls the log after our position from the
first that serves it (a mirror answers 301 and the next is tried). Each transaction is
applied through the write service (``AdminService.replicate``) with the new position in the
same store transaction, so a crash never loses or skips one. A source that answers
NEED_TO_REDUMP (we are new, from another epoch, or ahead of it) is dumped whole: handles in
batches, prefixes, then what we hold that it no longer does is removed.

After the log (in a round that drained it, or once a second under load), a round pulls the
governance rows changed since the last such pull
(OC_RETRIEVE_GOVERNANCE, an idnode extension; a full copy the first time), each page with
the new governance position in one store transaction. A source that does not know the
extension (HSJ answers OPERATION_NOT_SUPPORTED) is followed for identifiers only.

Only one process of a node runs the loop (worker 0, ``idnode serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from idnode.background import stop_task
from idnode.client.admin import AdminError
from idnode.client.replication import ReplicationClient, parse_address
from idnode.codes import OpCode, ResponseCode
from idnode.crypto.keys import PrivateKey, PublicKey, verify
from idnode.errors import IdnodeError
from idnode.model import HandleValue, handle_key
from idnode.service.admin import AdminService
from idnode.service.replication import (
    SOURCE_KEY,
    bare_prefix,
    dump_scopes,
    epoch_of,
    governance_position_of,
    hash_name,
    position_effects,
    position_of,
    set_meta,
)
from idnode.store import capture
from idnode.store.base import Store
from idnode.store.effects import Effects
from idnode.wire import bodies
from idnode.wire import replication as rw
from idnode.wire.site import HASH_BY_ALL

log = logging.getLogger(__name__)

# what a source that does not know opcode 1100 answers (HSJ: an unknown opcode)
_NO_EXTENSION = frozenset({ResponseCode.OPERATION_NOT_SUPPORTED, ResponseCode.PROTOCOL_ERROR})
DUMP_BATCH = 500  # records per store transaction while applying a dump


@dataclass
class MirrorStats:
    """What /metrics and the operator see of the loop."""

    applied: int = 0  # transactions applied since start
    dumps: int = 0
    governance_pages: int = 0  # pages of governance rows applied since start
    governance_copies: int = 0  # full copies (new, or behind the source's pruned changes)
    source: str = ""  # the source of the last successful pull
    source_next: int = 0  # its next txn id then
    last_error: str = ""
    rounds: int = 0

    def lag(self, position: int) -> int:
        """Transactions the source had that we had not applied, at the last pull."""
        if not self.source_next:
            return 0
        ours, theirs = rw.split_txn_id(position), rw.split_txn_id(self.source_next - 1)
        return max(0, theirs[1] - ours[1]) if ours[0] == theirs[0] else theirs[1]


@dataclass
class Mirror:
    store: Store
    admin: AdminService
    sources: list[str]
    identity: str
    private_key: PrivateKey
    interval: float = 0.2  # seconds between pulls when nothing is new
    timeout: float = 3.0
    governance_every: float = 1.0  # seconds between governance pulls while the log is busy
    now_ms: Callable[[], int] = lambda: 0
    # our place in our own site, sent with every 1001/1002 (HSJ ``rcvrHashType``,
    # ``numServers``, ``serverNum``): the source sends only the handles that hash to us
    share: tuple[int, int, int] = (HASH_BY_ALL, 1, 0)
    stats: MirrorStats = field(default_factory=MirrorStats)
    _keys: dict[str, PublicKey] = field(default_factory=dict)
    _clients: dict[str, ReplicationClient] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _no_governance: set[str] = field(default_factory=set)  # sources without the extension
    _last_date: int = 0
    _governance_at: float = float("-inf")
    _saved_next: int = 0  # the source's next txn id last kept in the store

    def client(self, address: str) -> ReplicationClient:
        """One client per source, keeping its authenticated session across rounds."""
        if address not in self._clients:
            host, port = parse_address(address)
            self._clients[address] = ReplicationClient(
                host, port, self.identity, self.private_key, timeout=self.timeout
            )
        return self._clients[address]

    # -- the loop --------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="idnode-mirror")

    async def close(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def _run(self) -> None:
        while True:
            try:
                await self.pull_once()
                self.stats.last_error = ""
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a source down or refusing: try again next round
                if str(exc) != self.stats.last_error:
                    log.warning("mirror: pull failed: %s", exc)
                self.stats.last_error = str(exc)
            await asyncio.sleep(self.interval)

    # -- one round -------------------------------------------------------------------------
    async def candidates(self) -> list[tuple[str, int]]:
        """Reachable sources not behind our epoch, as (address, next txn id), best first."""
        ours = max(rw.split_txn_id(await position_of(self.store))[0], await epoch_of(self.store))
        found = []
        for order, address in enumerate(self.sources):
            try:
                next_id = await self.client(address).next_txn_id()
            except (IdnodeError, OSError, ValueError):
                continue
            epoch = rw.split_txn_id(max(next_id - 1, 0))[0]
            if epoch >= ours:
                found.append((-epoch, order, address, next_id))
        return [(a, n) for _, _, a, n in sorted(found)]

    async def pull_once(self) -> int:
        """Pull from the best source that serves its log; transactions applied."""
        errors = []
        found = await self.candidates()
        if found and found[0][1] != self._saved_next:
            # the best source's log head, for every worker's /metrics and console: a pull that
            # falls behind (or fails) shows as lag until the position catches up
            text = f"{found[0][1]} {found[0][0]}"
            await self.store.apply(Effects(statements=(set_meta(SOURCE_KEY, text),)), logged=False)
            self._saved_next = found[0][1]
        for address, next_id in found:
            try:
                applied = await self._pull(address)
                if self._governance_due(applied):
                    await self.pull_governance(address)
            except AdminError as exc:  # a mirror (301) or a refusal: the next source
                errors.append(f"{address}: {exc}")
                continue
            self.stats.source, self.stats.source_next = address, next_id
            self.stats.rounds += 1
            return applied
        raise IdnodeError("no source serves its log: " + ("; ".join(errors) or "none reachable"))

    async def _key(self, address: str) -> PublicKey:
        if address not in self._keys:
            self._keys[address] = await self.client(address).source_key()
        return self._keys[address]

    def _verifier(self, key: PublicKey) -> rw.Verify:
        return lambda signature, data, hash_id: verify(key, signature, data, hash_name(hash_id))

    async def _pull(self, address: str) -> int:
        key = await self._key(address)
        client = self.client(address)
        if not client.session_id:
            with contextlib.suppress(IdnodeError, OSError):
                await client.open_session()  # else each pull answers a challenge
        position = await position_of(self.store)
        request = bodies.RetrieveTxnRequest(position, self._last_date, *self.share)
        parser = rw.StreamParser(dump=False, verify=self._verifier(key))
        redump, applied = False, 0
        async for chunk in self.client(address).stream(OpCode.RETRIEVE_TXN_LOG, request):
            run: list[rw.TxnRecord] = []  # consecutive records with values: one transaction
            for event in parser.feed(chunk):
                if isinstance(event, rw.TxnRecord) and event.action in rw.WITH_VALUES:
                    run.append(event)
                    continue
                applied += await self._apply_run(run)
                run = []
                if isinstance(event, rw.TxnHead):
                    redump = event.status == rw.NEED_TO_REDUMP
                elif isinstance(event, rw.TxnRecord):
                    await self._apply(event)
                elif isinstance(event, rw.TxnEnd):
                    self._last_date = event.date
                applied += isinstance(event, rw.TxnRecord)
            applied += await self._apply_run(run)
        if not parser.done:
            raise IdnodeError(f"{address} ended the transaction stream early")
        self.stats.applied += applied
        if redump:
            await self.dump(address)
        return applied

    async def _apply_run(self, run: list[rw.TxnRecord]) -> int:
        """Creates and updates in log order, with the position after the last, in one store
        transaction (a catch-up of thousands costs a few transactions, not thousands)."""
        if len(run) == 1:
            await self._apply(run[0])
        elif run:
            records = [(t.handle, t.values) for t in run]
            await self.admin.replicate_load(records, extra=position_effects(run[-1].txn_id))
        return len(run)

    async def _apply(self, txn: rw.TxnRecord) -> None:
        extra = position_effects(txn.txn_id)
        if txn.action in (rw.ACTION_HOME_NA, rw.ACTION_UNHOME_NA):
            homed = txn.action == rw.ACTION_HOME_NA
            await self.admin.replicate_home(bare_prefix(txn.handle), homed, extra=extra)
        elif txn.action == rw.ACTION_DELETE:
            await self.admin.replicate(txn.handle, None, extra=extra)
        elif txn.action in rw.WITH_VALUES:
            await self.admin.replicate(txn.handle, txn.values, extra=extra)

    # -- governance (idnode's extension) -------------------------------------------------------
    def _governance_due(self, applied: int) -> bool:
        """After a round that found the log drained, or every ``governance_every`` seconds
        under a steady write load: identifiers first, their governance rows soon after."""
        now = asyncio.get_running_loop().time()
        if applied and now - self._governance_at < self.governance_every:
            return False
        self._governance_at = now
        return True

    async def pull_governance(self, address: str) -> int:
        """Apply the governance rows the source changed since our position; pages applied."""
        if address in self._no_governance:
            return 0
        key = await self._key(address)
        parser = rw.StreamParser(dump=False, governance=True, verify=self._verifier(key))
        request = bodies.RetrieveGovernanceRequest(await governance_position_of(self.store))
        full, pages = False, 0
        try:
            async for chunk in self.client(address).stream(OpCode.RETRIEVE_GOVERNANCE, request):
                for event in parser.feed(chunk):
                    if isinstance(event, rw.GovHead):
                        full = event.full
                        if full:  # empty our tables, position 0 until the copy ends
                            await self.admin.replicate_governance((), position=0, full=True)
                    elif isinstance(event, rw.GovPage):
                        changes = capture.decode_changes(event.changes)
                        position = None if full else event.position
                        await self.admin.replicate_governance(changes, position=position)
                        pages += 1
                    elif isinstance(event, rw.GovEnd):
                        await self.admin.replicate_governance((), position=event.position)
        except AdminError as exc:
            if exc.code not in _NO_EXTENSION:
                raise
            log.info("mirror: %s replicates no governance (identifiers only)", address)
            self._no_governance.add(address)
            return 0
        if not parser.done:
            raise IdnodeError(f"{address} ended the governance stream early")
        self.stats.governance_pages += pages
        self.stats.governance_copies += full
        if full:
            log.info("mirror: copied the governance tables of %s (%d pages)", address, pages)
        return pages

    # -- a dump ----------------------------------------------------------------------------
    async def dump(self, address: str) -> int:
        """Replace what we hold by the source's dump; records received."""
        key = await self._key(address)
        parser = rw.StreamParser(dump=True, verify=self._verifier(key))
        seen: set[str] = set()
        prefixes: list[str] = []
        batch: list[tuple[str, tuple[HandleValue, ...]]] = []
        resume = 0
        async for chunk in self.client(address).stream(
            OpCode.DUMP_HANDLES, bodies.DumpHandlesRequest(*self.share)
        ):
            for event in parser.feed(chunk):
                if isinstance(event, rw.DumpInfo):
                    resume, self._last_date = event.txn_id, event.date
                elif isinstance(event, rw.DumpHandle):
                    seen.add(handle_key(event.handle))
                    batch.append((event.handle, event.values))
                    if len(batch) >= DUMP_BATCH:
                        await self.admin.replicate_load(batch)
                        batch = []
                elif isinstance(event, rw.DumpPrefix):
                    prefixes.append(bare_prefix(event.handle))
        if not parser.done:
            raise IdnodeError(f"{address} ended the dump early")
        if batch:
            await self.admin.replicate_load(batch)
        await self._drop_others(seen, prefixes)
        for prefix in prefixes:
            await self.admin.replicate_home(prefix, True)
        await self.store.apply(position_effects(resume), logged=False)
        self.stats.dumps += 1
        log.info(
            "mirror: dumped %d records and %d prefixes from %s", len(seen), len(prefixes), address
        )
        return len(seen)

    async def _drop_others(self, seen: set[str], prefixes: list[str]) -> None:
        """Remove what we hold that the dump did not carry (a re-attached old primary's
        writes nobody else has, records deleted while we were away)."""
        wanted = {p.lower() for p in prefixes}
        ours = await self.store.homed_prefixes()
        for scope in dump_scopes(ours):
            names = await self.store.list_handles(scope)
            for name in names:
                if handle_key(name) not in seen:
                    await self.admin.replicate(name, None)
        for prefix in ours:
            if prefix.lower() not in wanted:
                await self.admin.replicate_home(prefix, False)
