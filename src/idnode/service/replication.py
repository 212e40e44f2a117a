"""Replication as HANDLE.NET does it: the primary's side and the state both sides keep.

A primary serves its transaction log (OC_RETRIEVE_TXN_LOG, 1001) and a dump of everything it
holds (OC_DUMP_HANDLES, 1002) to authenticated mirror identities, and tells anyone the id its
next transaction will get (OC_GET_NEXT_TXN_ID, 1000). As in HSJ's ``RetrieveTxnResponse``
each logged change is sent with the record's *current* values (or as a deletion when the
record is gone), so applying it is idempotent and the log itself needs to hold no values.

Txn ids on the wire are ``(epoch << 40) | serial`` (``wire.replication.txn_id``): the serial
of the node's own transaction log, and an epoch that ``idnode promote`` raises. A receiver
whose last id is from another epoch, or ahead of our log, is told to redump (HSJ
NEED_TO_REDUMP). What a node knows about replication lives in its store's ``meta`` table:

* ``replication.epoch``: this node's epoch (0 until a promotion);
* ``replication.position``: on a mirror, the id of the last transaction of its source it
  applied, written in the same transaction as the change;
* ``replication.fenced``: why a primary takes no writes (a newer epoch seen at a peer).

* ``replication.governance``: on a mirror, the id of the last governance change it
  applied (``(epoch << 40) | change id``), written with the rows it brought;
* ``replication.pruned`` and ``replication.pruned_changes``: the last transaction-log serial
  and the last governance change id that retention deleted (``replication.retention``),
  written in the transaction that deleted them. A receiver whose position is behind either
  is too far behind for the log and is told to redump (HSJ does the same when a mirror asks
  for a transaction older than the log it keeps).

A receiver names its place in its own site (HSJ ``rcvrHashType``, ``numServers``,
``serverNum``): a server of an N-server mirror site is sent only the handles that hash to
it (``wire.site.server_number``, the rule every client uses to pick the server), and every
homed prefix. Governance (1100) is not shared out: each server of a site gets it all.

Identifiers and homed prefixes travel in HSJ's streams (1001/1002). Governance rows travel
in an idnode extension (OC_RETRIEVE_GOVERNANCE, 1100; ``store.capture`` records which rows
changed): a mirror that follows an idnode primary is a full standby; one that follows HSJ
replicates identifiers only (docs/replication.md).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

from idnode.auth.identity import Identity
from idnode.crypto.keys import PrivateKey, sign
from idnode.errors import AuthenticationNeeded, MalformedMessage, NotAuthorized
from idnode.model import NA_PREFIX
from idnode.store import capture
from idnode.store.base import Store, Transaction
from idnode.store.effects import Effects, Statement
from idnode.store.governance import GET_META, SET_META
from idnode.wire import replication as rw
from idnode.wire.bodies import (
    DumpHandlesRequest,
    RetrieveGovernanceRequest,
    RetrieveTxnRequest,
)
from idnode.wire.site import HASH_BY_ALL, HASH_BY_PREFIX, HASH_BY_SUFFIX, server_number

log = logging.getLogger(__name__)

EPOCH_KEY = "replication.epoch"
POSITION_KEY = "replication.position"
FENCE_KEY = "replication.fenced"
GOVERNANCE_KEY = capture.POSITION_KEY
SOURCE_KEY = "replication.source"  # a mirror's source at its last pull: "<next txn id> <address>"
PRUNED_LOG_KEY = "replication.pruned"  # the last log serial retention deleted
PRUNED_CHANGES_KEY = "replication.pruned_changes"  # the last governance change id it deleted
PAGE = 1000  # log rows and handles read per query while streaming

# our log's actions -> HSJ Transaction.ACTION_* (values follow for create and update)
_ACTIONS = {
    "create": rw.ACTION_CREATE,
    "load": rw.ACTION_CREATE,
    "add": rw.ACTION_UPDATE,
    "modify": rw.ACTION_UPDATE,
    "remove": rw.ACTION_UPDATE,
    "delete": rw.ACTION_DELETE,
    "home": rw.ACTION_HOME_NA,
    "unhome": rw.ACTION_UNHOME_NA,
}

# the hash HSJ writes in a signed stream -> ours (crypto.keys.sign)
_HASHES = {"SHA-256": "SHA256", "SHA256": "SHA256", "SHA1": "SHA1", "SHA-1": "SHA1"}


def hash_name(hash_id: str) -> str:
    try:
        return _HASHES[hash_id.upper()]
    except KeyError:
        raise ValueError(f"unsupported stream hash {hash_id!r}") from None


async def read_meta(store: Store, key: str) -> str | None:
    value = await store.query_value(GET_META, key)
    return None if value is None else str(value)


def set_meta(key: str, value: str) -> Statement:
    return Statement(SET_META, (key, value))


async def epoch_of(store: Store) -> int:
    return int(await read_meta(store, EPOCH_KEY) or 0)


async def position_of(store: Store) -> int:
    return int(await read_meta(store, POSITION_KEY) or 0)


async def governance_position_of(store: Store) -> int:
    return int(await read_meta(store, GOVERNANCE_KEY) or 0)


async def pruned_log_of(store: Store) -> int:
    return int(await read_meta(store, PRUNED_LOG_KEY) or 0)


async def pruned_changes_of(store: Store) -> int:
    return int(await read_meta(store, PRUNED_CHANGES_KEY) or 0)


Share = Callable[[str], bool]  # whether a handle belongs to the receiving server


def receiver_share(hash_type: int, num_servers: int, server_num: int) -> Share | None:
    """Which handles the receiving server holds (HSJ ``rcvrHashType``, ``numServers``,
    ``serverNum``): None when it holds them all (a site of one server). A place that is no
    place in a site is refused rather than answered with nothing, which a misconfigured
    mirror would take for an empty source."""
    if num_servers <= 1:
        return None
    if hash_type not in (HASH_BY_PREFIX, HASH_BY_SUFFIX, HASH_BY_ALL):
        raise MalformedMessage(
            f"unknown hash option {hash_type} of the receiving server's site", field="hash_type"
        )
    if not 0 <= server_num < num_servers:
        why = f"server number {server_num} is not one of the receiver's {num_servers} servers"
        raise MalformedMessage(why, field="server_num")
    return lambda handle: server_number(handle, hash_type, num_servers) == server_num


def share_of(request: RetrieveTxnRequest | DumpHandlesRequest) -> Share | None:
    return receiver_share(request.hash_type, request.num_servers, request.server_num)


def position_effects(position: int) -> Effects:
    return Effects(statements=(set_meta(POSITION_KEY, str(position)),))


def na_handle(prefix: str) -> str:
    return prefix if prefix.upper().startswith(NA_PREFIX.upper()) else NA_PREFIX + prefix


def bare_prefix(handle: str) -> str:
    return handle[len(NA_PREFIX) :] if handle.upper().startswith(NA_PREFIX.upper()) else handle


@dataclass
class ReplicationSource:
    """The primary's side: who may pull, and the bytes of the streams they get.

    ``admins``: identities allowed to pull besides the node's operators (``is_operator``),
    HSJ's ``replication_admins``. ``clock`` gives the dates the streams carry (seconds)."""

    store: Store
    private_key: PrivateKey | None
    clock: Callable[[], float]
    is_operator: Callable[[Identity], bool]
    admins: frozenset[Identity] = frozenset()
    refusal: Callable[[], str | None] = lambda: None  # why we are no source (a mirror)

    def authorize(self, who: Identity | None) -> None:
        if who is None:
            raise AuthenticationNeeded("authentication needed to replicate")
        if who not in self.admins and not self.is_operator(who):
            raise NotAuthorized(f"{who} may not replicate from this server")

    async def next_txn_id(self) -> int:
        """The id our next transaction gets; a mirror answers the one after its position."""
        position = await position_of(self.store)
        if self.refusal() is not None and position:
            return position + 1
        return rw.txn_id(await epoch_of(self.store), await self.store.serial() + 1)

    def _writer(self) -> rw.StreamWriter:
        key = self.private_key
        if key is None:
            return rw.StreamWriter(None)
        return rw.StreamWriter(lambda data: sign(key, data, "SHA256"), rw.HASH_ID)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def transactions(self, request: RetrieveTxnRequest) -> AsyncIterator[bytes]:
        """The stream answering ``request``: every change after its last id, or a redump."""
        ours = share_of(request)
        w = self._writer()
        yield w.head()
        epoch, last_serial = await epoch_of(self.store), await self.store.serial()
        pruned = await pruned_log_of(self.store)
        their_epoch, their_serial = rw.split_txn_id(max(request.last_txn_id, 0))
        if (
            request.last_txn_id <= 0
            or their_epoch != epoch
            or their_serial > last_serial
            or their_serial < pruned  # what they need next was pruned: too far behind
        ):
            log.info(
                "replication: redump needed (their last %d, our epoch %d serial %d, log kept"
                " after %d)", request.last_txn_id, epoch, last_serial, pruned,
            )  # fmt: skip
            yield w.txn_head(rw.NEED_TO_REDUMP)
            yield w.txn_end(request.last_query_date)
            return
        yield w.txn_head(rw.SENDING_TRANSACTIONS)
        since = their_serial
        while since < last_serial:
            page = await self.store.transactions(since, min(PAGE, last_serial - since))
            if await pruned_log_of(self.store) > since:
                # retention deleted rows after ``since`` while we streamed: end the stream
                # unfinished; the receiver asks again from its position and is told to redump
                log.warning("replication: the log was pruned past %d while streaming", since)
                return
            if not page:
                break
            chunk = []
            for txn in page:
                record = await self._record_of(epoch, txn, ours)
                if record is not None:
                    chunk.append(w.txn(record))
            since = page[-1].serial
            if chunk:
                yield b"".join(chunk)
        yield w.txn_end(self._now_ms())

    async def _record_of(
        self, epoch: int, txn: Transaction, ours: Share | None = None
    ) -> rw.TxnRecord | None:
        """The record of one log row, with the handle's current values (HSJ
        ``forwardTransactions``); None for a row no receiver needs (governance, a change a
        later row undoes, a handle another server of the receiver's site holds). Homing
        goes to every server of the site: each answers for the prefix's handles it holds."""
        kind, handle = _ACTIONS.get(txn.action), txn.handle
        if kind is None:
            return None
        ident, date = rw.txn_id(epoch, txn.serial), txn.timestamp * 1000
        if kind in (rw.ACTION_HOME_NA, rw.ACTION_UNHOME_NA):
            return rw.TxnRecord(ident, na_handle(handle), kind, date)
        if ours is not None and not ours(handle):
            return None
        values = await self.store.get_handle(handle)
        if kind == rw.ACTION_DELETE:
            return None if values is not None else rw.TxnRecord(ident, handle, kind, date)
        if values is None:
            return None  # deleted since: its deletion follows in the log
        return rw.TxnRecord(ident, handle, kind, date, tuple(values))

    async def dump(self, request: DumpHandlesRequest) -> AsyncIterator[bytes]:
        """Everything we hold (HSJ ``DumpHandlesResponse``): where to resume the log, every
        handle, every homed prefix. Changes landing meanwhile may be in the dump and are
        sent again from the log: applying them twice is harmless. A server of a
        several-server site gets the handles that hash to it, and every prefix."""
        ours = share_of(request)
        w = self._writer()
        yield w.head() + w.dump_head()
        epoch, serial = await epoch_of(self.store), await self.store.serial()
        yield w.dump_info(self._now_ms(), rw.txn_id(epoch, serial))
        prefixes = await self.store.homed_prefixes()
        for scope in dump_scopes(prefixes):
            offset = 0
            while True:
                names = await self.store.list_handles(scope, offset=offset, limit=PAGE)
                chunk = []
                for name in names:
                    if ours is not None and not ours(name):
                        continue
                    values = await self.store.get_handle(name)
                    if values is not None:
                        chunk.append(w.dump_handle(name, values))
                if chunk:
                    yield b"".join(chunk)
                if len(names) < PAGE:
                    break
                offset += len(names)
        yield b"".join(w.dump_prefix(na_handle(p)) for p in prefixes) + w.dump_done()

    async def governance(self, request: RetrieveGovernanceRequest) -> AsyncIterator[bytes]:
        """The governance rows changed after the receiver's position, each as it is now (or
        gone); everything when the receiver is new, from another epoch or ahead of us."""
        w = self._writer()
        yield w.head()
        epoch = await epoch_of(self.store)
        last = int(await self.store.query_value(capture.LAST_CHANGE) or 0)
        pruned = await pruned_changes_of(self.store)
        last = max(last, pruned)  # retention keeps the newest change; this is belt and braces
        their_epoch, since = rw.split_txn_id(max(request.last_change, 0))
        if request.last_change <= 0 or their_epoch != epoch or since > last or since < pruned:
            yield w.gov_head(True)
            async for page in self._all_rows():
                yield w.gov_page(0, page)
            yield w.gov_end(rw.txn_id(epoch, last))
            return
        yield w.gov_head(False)
        while since < last:
            rows = await self.store.query(capture.SELECT_CHANGES, since, last, PAGE)
            if await pruned_changes_of(self.store) > since:  # pruned while we streamed
                log.warning("replication: changes were pruned past %d while streaming", since)
                return
            if not rows:
                break
            changes = await self._current_rows(rows)
            since = int(rows[-1]["id"])
            yield w.gov_page(rw.txn_id(epoch, since), capture.encode_changes(changes))
        yield w.gov_end(rw.txn_id(epoch, since))

    async def _current_rows(self, rows: list[dict]) -> list[capture.Change]:
        """Each changed key once, in order of its last change, with its row as it is now
        (None: gone); read a table at a time."""
        order = {(r["tbl"], tuple(json.loads(r["pk"]))): n for n, r in enumerate(rows)}
        by_table: dict[str, list[tuple]] = {}
        for table, key in order:
            by_table.setdefault(table, []).append(key)
        found: dict[tuple[str, tuple], dict] = {}
        for table, keys in by_table.items():
            for sql, args in capture.select_rows(table, keys):
                for row in await self.store.query(sql, *args):
                    found[(table, capture.key_of(table, row))] = row
        ordered = sorted(order, key=order.__getitem__)
        return [(table, key, found.get((table, key))) for table, key in ordered]

    async def _all_rows(self) -> AsyncIterator[bytes]:
        for table, pk in capture.TABLES.items():
            offset = 0
            while True:
                rows = await self.store.query(capture.select_page(table), PAGE, offset)
                changes = [(table, tuple(r[c] for c in pk), r) for r in rows]
                changes = [c for c in changes if not capture.is_local(table, c[1])]
                if changes:
                    yield capture.encode_changes(changes)
                if len(rows) < PAGE:
                    break
                offset += len(rows)


def dump_scopes(prefixes: Iterable[str]) -> list[str]:
    """The prefixes whose handles a dump lists: the homed ones and 0.NA (their records)."""
    out, seen = [], set()
    for p in ["0.NA", *prefixes]:
        if p.lower() not in seen:
            seen.add(p.lower())
            out.append(p)
    return out
