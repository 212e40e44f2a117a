"""The embedded engine: one SQLite file in WAL mode.

Threads, and why:

* **Writes** use one writing connection, one transaction at a time (an ``asyncio.Lock``).
  The usual write (a create, an update) joins a group commit that runs inline on the loop
  thread, the loop turning between two of its writes: a hop to a worker thread and back
  (futex waits, the GIL handed over twice) cost about a sixth of a create's server time
  (docs/performance.md, round 6). It never waits there: if another process (``idnode
  import``) holds the file's write lock, the group goes to the dedicated writer thread and
  waits on it. Governance transactions (``atomic``), bulk loads and migrations run on that
  writer thread too.
* **Point reads** (``get_handle``, ``serial``, ``homed_prefixes``) run inline on the event-loop
  thread on their own read-only connection. A primary-key lookup costs ~17 us, while a hop
  to a worker thread and back costs ~100 us (aiosqlite ~220 us): resolution is the hot path,
  so the hop would cost more than the work. WAL readers never wait for the writer.
* **Scans** (``list_handles``, ``count_handles``, ``transactions``) run on a second worker
  thread with its own connection, because they grow with the data and must not stall the loop.
* **Checkpoints** (copying the WAL into the database, fsyncs included: milliseconds) never
  run in a COMMIT (the writing connection's autocheckpoint is off), so never on the loop:
  after every ``_CHECKPOINT_EVERY`` commits the writer thread runs one between two
  transactions, so it completes and the next write starts the WAL over instead of growing
  it. A bulk load's batch (megabytes of frames) is checkpointed there right after its
  COMMIT, before the next write begins, while the next batch is prepared (``load_rows``).

Each statement in autocommit mode is its own read transaction, so every read sees a committed
snapshot; a write's effect is visible to reads as soon as its ``await`` returns.

Layout: ``handles`` (key -> spelling, prefix key), ``handle_values`` (one row per value,
clustered by handle key so a record is one contiguous B-tree range), ``homed_prefixes``,
``txlog``. A record is read with one indexed LEFT JOIN. Keeping a whole record as one encoded
blob was measured (100k handles of 4 values, inline): ~13 us with a hand-written struct decoder
vs ~17 us for the join and ~28 us with the generic wire reader - too small a gain to give up
per-value SQL (queries by type, per-value updates). ``bench/store_read.py`` reproduces the
figures for this engine.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from idnode.errors import (
    HandleAlreadyExists,
    HandleNotFound,
    IdnodeError,
    ServerBusy,
    ValueAlreadyExists,
    ValueNotFound,
)
from idnode.model import HandleValue, PublicAnswer, StoredWire, handle_key
from idnode.names import prefix_key, prefix_part
from idnode.store.base import (
    NOT_SERVED,
    AnswerEncoder,
    Atomic,
    RowGroup,
    SerialCallback,
    Store,
    Transaction,
    check_handle_name,
    check_indexes,
    check_prefix,
    check_row,
    check_row_group,
    check_values,
    layout_answers,
)
from idnode.store.capture import sqlite_ddl
from idnode.store.effects import NO_EFFECTS, Effects
from idnode.store.governance import (
    QUOTA_TABLES,
    RECURSIVE_CACHE_TABLES,
    SESSION_TABLES,
    TABLES,
    TEMPLATE_SUPERVISION_TABLES,
    Op,
    apply_effects,
)
from idnode.store.portable import SQLITE_TYPES, for_sqlite, render_ddl
from idnode.store.rows import encode_record, encode_refs, record_from_rows

T = TypeVar("T")
LOAD_BATCH = 5000  # records per executemany in a bulk load
log = logging.getLogger("idnode.store")

# -- schema --------------------------------------------------------------------------------------
# MIGRATIONS[i] takes the schema from version i to i + 1 (PRAGMA user_version). Never edit a
# released entry: append a new one, so every existing file upgrades by the same steps.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE handles (
            key    TEXT PRIMARY KEY,      -- handle_key(handle): case-insensitive lookup
            handle TEXT NOT NULL,         -- as spelled when created
            prefix TEXT                   -- handle_key of the part before '/', NULL without '/'
        ) WITHOUT ROWID""",
        "CREATE INDEX handles_by_prefix ON handles (prefix, key)",
        """CREATE TABLE handle_values (
            key         TEXT NOT NULL REFERENCES handles (key) ON DELETE CASCADE,
            idx         INTEGER NOT NULL,
            type        TEXT NOT NULL,
            data        BLOB NOT NULL,
            permissions INTEGER NOT NULL,
            ttl_type    INTEGER NOT NULL,
            ttl         INTEGER NOT NULL,
            timestamp   INTEGER NOT NULL,
            refs        TEXT,             -- JSON [[handle, index], ...]; NULL when none
            PRIMARY KEY (key, idx)
        ) WITHOUT ROWID""",
        """CREATE TABLE homed_prefixes (
            key    TEXT PRIMARY KEY,      -- handle_key(prefix)
            prefix TEXT NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE txlog (
            serial    INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: never reused
            timestamp INTEGER NOT NULL,
            action    TEXT NOT NULL,
            handle    TEXT NOT NULL
        )""",
    ),
    # 2: everything else a node knows (store/governance.py), beside the identifiers
    tuple(render_ddl(t, SQLITE_TYPES) for t in TABLES),
    # 3: quota counters (service/quotas.py)
    tuple(render_ddl(t, SQLITE_TYPES) for t in QUOTA_TABLES),
    # 4: the recursive cache the workers of a recursive node share (hierarchy/shared_cache.py)
    tuple(render_ddl(t, SQLITE_TYPES) for t in RECURSIVE_CACHE_TABLES),
    # 5: custom templates, each record's template version, children's audit heads
    tuple(render_ddl(t, SQLITE_TYPES) for t in TEMPLATE_SUPERVISION_TABLES),
    # 6: each record's pre-encoded public answer (wire.public_answer); existing records get
    # theirs from ``fill_public_answers`` (idnode serve), the full path serves them meanwhile.
    # A rowid table: its rows (1.5 KB for eight values) would overflow a WITHOUT ROWID
    # table's cells (about 1 KB on 4 KiB pages) into a page each, six times the size.
    (
        """CREATE TABLE public_answers (
            key        TEXT PRIMARY KEY REFERENCES handles (key) ON DELETE CASCADE,
            wire       BLOB NOT NULL,     -- the value list of a resolution response
            json       BLOB NOT NULL,     -- the REST values array
            restricted INTEGER NOT NULL   -- 1: values an authorised reader may read
        )""",
    ),
    # 7: which governance rows changed, for mirrors (store/capture.py)
    sqlite_ddl(),
    # 8: whether every record has its stored answer (``fill_public_answers``): a filled store
    # starts without walking its handles. A row while a fill runs (complete 0), made complete
    # in the transaction of its last batch; deleted by any write of a record without an answer
    (
        """CREATE TABLE public_answers_fill (
            complete INTEGER NOT NULL  -- 1: every record has its stored answer
        )""",
    ),
    # 9: the REST API's sessions, shared by every worker (auth/rest_sessions.py)
    tuple(render_ddl(t, SQLITE_TYPES) for t in SESSION_TABLES),
    # 10: the wire half of each stored answer in an index of its own, covering the store
    # path's read over UDP and TCP (``_GET_WIRE``): one B-tree descent, where the key's index
    # and then the row's table took two (1.3 us of 4.5 at a million records). SQLite keeps it
    # in every write's transaction, cascades included. Its cells overflow beyond ~1 KB, like a
    # WITHOUT ROWID table's would, but only for the records with long answers.
    ("CREATE INDEX public_answers_wire ON public_answers (key, wire, restricted)",),
)
SCHEMA_VERSION = len(MIGRATIONS)

_PRAGMAS = (
    "PRAGMA synchronous = NORMAL",  # with WAL: durable against crashes of the process
    "PRAGMA foreign_keys = ON",
    # the file mapped read-only up to 2 GiB (SQLite's default ceiling): a point read beyond
    # the mapping costs a pread per page; at a million records with their stored answers
    # (735 MB) a random lookup took 14.6 us at 256 MiB and 7.6 us at 2 GiB. Mapped pages are
    # the shared page cache, not the worker's own memory (docs/performance.md)
    "PRAGMA mmap_size = 2147418112",
)

_GET = (
    "SELECT v.idx, v.type, v.data, v.permissions, v.ttl_type, v.ttl, v.timestamp, v.refs"
    " FROM handles h LEFT JOIN handle_values v ON v.key = h.key WHERE h.key = ? ORDER BY v.idx"
)
_INSERT_VALUE = "INSERT INTO handle_values VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_GET_ANSWER = "SELECT wire, json, restricted FROM public_answers WHERE key = ?"
# (named: the planner would take the primary key's index, which does not cover the read)
_GET_WIRE = (
    "SELECT wire, restricted FROM public_answers INDEXED BY public_answers_wire WHERE key = ?"
)
_PUT_ANSWER = "INSERT OR REPLACE INTO public_answers VALUES (?, ?, ?, ?)"
_DROP_ANSWER = "DELETE FROM public_answers WHERE key = ?"
_FILLED = "SELECT 1 FROM public_answers_fill WHERE complete = 1"
_UNFILLED = "DELETE FROM public_answers_fill"  # a record written without its answer
_FILL_STARTED = "INSERT INTO public_answers_fill VALUES (0)"
_FILL_DONE = "UPDATE public_answers_fill SET complete = 1"  # no row (a write cleared it): none
_KEYS_WITHOUT_ANSWERS = (
    "SELECT h.key FROM handles h WHERE h.key > ? AND NOT EXISTS"
    " (SELECT 1 FROM public_answers a WHERE a.key = h.key) ORDER BY h.key LIMIT ?"
)
_UPDATE_VALUE = (
    "UPDATE handle_values SET type = ?, data = ?, permissions = ?, ttl_type = ?, ttl = ?,"
    " timestamp = ?, refs = ? WHERE key = ? AND idx = ?"
)

# Enum members built once: constructing IntFlag values per row is measurable on the hot path.
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6
_CHECKPOINT_EVERY = 32  # commits between checkpoint passes (a create group: ~10-40 pages)
_GROUP_MAX = 32  # writes in one group commit (each of its callers waits for its COMMIT)


class SQLiteStore(Store):
    """``Store`` on one SQLite file. ``clock`` (wall seconds, from the caller) stamps
    transaction-log rows."""

    def __init__(
        self,
        path: str,
        *,
        clock: Callable[[], float],
        inline_reads: bool = True,
        busy_timeout: float = 5.0,
        answers: AnswerEncoder | None = None,
    ) -> None:
        """``inline_reads=False`` sends point reads to the scan thread too (e.g. for a disk
        far slower than the page cache); ``busy_timeout`` is how long a write waits for
        another process (say ``idnode import``) holding the file's write lock.
        ``answers``: keep each record's public answer (``Store.public_answer``); without
        it every write drops the record's stored answer instead.
        """
        if path in ("", ":memory:") or path.startswith("file:"):
            raise ValueError("SQLiteStore needs a file path (WAL needs a file all threads share)")
        self.path = path
        self._clock = clock
        self._inline_reads = inline_reads
        self.inline_answers = inline_reads
        self._answers = answers
        self._busy_ms = int(busy_timeout * 1000)
        self._writer: ThreadPoolExecutor | None = None
        self._write_lock: asyncio.Lock | None = None
        self._pending: list[_Pending] = []  # writes waiting for the next group commit
        self._committer: asyncio.Task | None = None
        self._scanner: ThreadPoolExecutor | None = None
        self._wconn: sqlite3.Connection | None = None
        self._sconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None  # inline point reads; None if not inline
        # the store path's cursor on it, kept: a cursor made for each read cost 0.2 us of 3.5
        self._rcursor: sqlite3.Cursor | None = None
        self._snapshot_open = False  # _rconn holds this loop turn's read transaction
        self._subscribers: list[SerialCallback] = []
        self._announced = 0  # highest serial told to subscribers
        self._poller: asyncio.Task | None = None
        self.poll_interval = 0.05  # seconds between checks for other processes' writes
        self._commits = 0  # since the last checkpoint
        self._load_checkpoint: asyncio.Task | None = None  # after a bulk load (load_rows)

    # -- lifecycle -------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._writer is not None:
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="idnode-sqlite-write")
        self._scanner = ThreadPoolExecutor(1, thread_name_prefix="idnode-sqlite-scan")
        try:
            self._wconn = await loop.run_in_executor(self._writer, self._open_writer)
            self._sconn = _connect(self.path, self._busy_ms, readonly=True)
            if self._inline_reads:
                self._rconn = _connect(self.path, self._busy_ms, readonly=True)
                self._rcursor = self._rconn.cursor()
        except BaseException:
            await self.close()
            raise

    def _open_writer(self) -> sqlite3.Connection:
        conn = _connect(self.path, self._busy_ms, readonly=False)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise IdnodeError(f"sqlite store: cannot use WAL mode (got {mode})")
            migrate(conn)
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint
            # a group's savepoints keep statement journals: in memory, not a temporary file
            # created, unlinked and mapped for each group (strace of a create burst)
            conn.execute("PRAGMA temp_store = MEMORY")
        except sqlite3.Error as exc:
            conn.close()
            raise _translate(exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    async def close(self) -> None:
        """Finish queued writes and scans, then close every connection.

        Each worker's connection is closed on its own thread, queued behind its pending work,
        so nothing is closed under a running statement. The last close checkpoints the WAL.
        """
        loop = asyncio.get_running_loop()
        if self._load_checkpoint is not None:
            await self._load_checkpoint
            self._load_checkpoint = None
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        if self._rconn is not None:
            self._rcursor = None
            self._rconn.close()  # (a snapshot still open ends with it)
            self._snapshot_open = False
        pairs = ((self._writer, self._wconn), (self._scanner, self._sconn))
        self._rconn = self._sconn = self._wconn = None
        self._writer = self._scanner = None
        for executor, conn in pairs:
            if executor is not None:
                if conn is not None:
                    await loop.run_in_executor(executor, conn.close)
                executor.shutdown(wait=False)

    # -- plumbing --------------------------------------------------------------------------------
    async def _point(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a small read inline on the loop thread (or on the scan thread if not inline)."""
        conn = self._rconn
        if conn is not None:
            try:
                return fn(self._turn_snapshot(conn))
            except sqlite3.Error as exc:
                raise _translate(exc) from exc
        return await self._scan(fn)

    def _turn_snapshot(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """``conn`` inside one read transaction for the rest of this turn of the loop.

        Each statement outside a transaction begins and ends a read of its own, and in WAL
        mode that costs a lock and an unlock of the shared-memory index and a ``stat`` of the
        file: about 7 µs on a virtual machine, most of an inline point read (a stored answer
        is 3.5 µs inside a transaction, 11.5 µs outside; docs/performance.md). So the inline
        reads of one turn share one transaction, which the next turn ends first thing.

        Nobody sees an older state for it: a write of this process reaches its caller in a
        callback the loop runs after that end (callbacks run in the order they were
        scheduled, and the end was scheduled when the snapshot began, before the commit it
        missed), and a write of another process that committed during the turn is missed by
        less than that turn, when other processes' writes reach this one's response cache
        only at the next ``poll_interval``.
        """
        if not self._snapshot_open:
            try:
                asyncio.get_running_loop().call_soon(self._end_snapshot)
            except RuntimeError:
                return conn  # no loop (a synchronous caller): a read of its own
            conn.execute("BEGIN")  # deferred: the first read takes the snapshot
            self._snapshot_open = True
        return conn

    def _end_snapshot(self) -> None:
        self._snapshot_open = False
        conn = self._rconn
        if conn is not None and conn.in_transaction:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error:
                log.exception("sqlite store: ending an inline read transaction")

    async def _scan(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._scanner is None or self._sconn is None:
            raise RuntimeError("store is not open")
        conn = self._sconn

        def run() -> T:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise _translate(exc) from exc

        return await asyncio.get_running_loop().run_in_executor(self._scanner, run)

    async def _write(
        self,
        fn: Callable[..., int],
        *args: Any,
        alone: bool = False,
        foreign_keys: bool = True,
        effects: Effects = NO_EFFECTS,
    ) -> int:
        """Run ``fn(conn, *args)`` and then ``effects`` all or nothing; return its serial.

        The usual write joins the next group commit (``_commit_pending``), on the loop
        thread. ``alone=True``: a transaction of its own on the writer thread, for a write
        whose work grows with its input (a load, the answer fill), which must not hold the
        loop. ``foreign_keys=False`` (alone only) skips SQLite's foreign-key checks for this
        transaction (the pragma cannot change inside one): for writes that keep the keys
        consistent by construction and need no cascade.
        """
        if self._writer is None or self._wconn is None:
            raise RuntimeError("store is not open")
        if not alone:  # committed with its neighbours
            loop = asyncio.get_running_loop()
            done: asyncio.Future[int] = loop.create_future()
            self._pending.append(_Pending(fn, args, effects, done))
            if self._committer is None or self._committer.done():
                self._committer = loop.create_task(self._commit_pending())
            return await done
        conn = self._wconn

        def run() -> int:
            try:
                if not foreign_keys:
                    conn.execute("PRAGMA foreign_keys = OFF")
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        serial = fn(conn, *args)
                        if effects:
                            self._apply(conn, effects, serial)
                        conn.execute("COMMIT")
                    except BaseException:
                        if conn.in_transaction:
                            conn.execute("ROLLBACK")
                        raise
                finally:
                    if not foreign_keys:
                        conn.execute("PRAGMA foreign_keys = ON")
            except sqlite3.Error as exc:
                raise _translate(exc) from exc
            return serial

        async with self._lock():
            serial = await asyncio.get_running_loop().run_in_executor(self._writer, run)
            await self._checkpoint_if_due()
        self._announce(serial)
        return serial

    async def _commit_pending(self) -> None:
        """Group commit: every write queued meanwhile goes into one transaction, each in a
        savepoint of its own, so each is still all or nothing and gets its own serial, result
        or error; its caller hears back only after the COMMIT, as before.

        Why: a create dirties a page in each of about a dozen B-trees (handles, values, stored
        answer, log, audit chain, history, statistics...), and committing it alone wrote all
        of them to the WAL and took a turn on the writer thread. Writes arriving together
        (concurrent clients) now share those pages, that COMMIT and that turn
        (docs/performance.md: writes). A write arriving alone commits alone, at once.

        The group runs inline (no thread hop; the writes are small), unless another process
        holds the file's write lock: then it waits for it on the writer thread, not the loop.
        Inline, the loop turns between two writes of a group, so a resolution waits for one
        write, not a group (a group of eight held it ~2 ms: ``bench/writes.py --probe``); a
        group takes at most ``_GROUP_MAX`` writes, so its callers wait for at most that many
        others, and the loop turns between groups too.
        """
        loop = asyncio.get_running_loop()
        while self._pending:
            async with self._lock():  # (released between groups: ``atomic`` gets its turn)
                group = self._pending[:_GROUP_MAX]
                del self._pending[:_GROUP_MAX]
                try:
                    outcomes = await self._run_group_inline(group)
                    if outcomes is None:  # the file is busy: wait off the loop
                        outcomes = await loop.run_in_executor(self._writer, self._run_group, group)
                except BaseException as exc:  # BEGIN or COMMIT failed: none of them was written
                    for pending in group:
                        if pending.done.done():
                            continue
                        if isinstance(exc, Exception):
                            pending.done.set_exception(exc)
                        else:  # the committer was cancelled (the store closes)
                            pending.done.cancel()
                    if not isinstance(exc, Exception):
                        raise
                    continue
            checkpoint = self._count_commit()
            serials = [o for o in outcomes if isinstance(o, int)]
            if serials:
                self._announce(max(serials))  # before any caller resumes
            for pending, outcome in zip(group, outcomes, strict=True):
                if pending.done.done():  # its caller was cancelled
                    continue
                if isinstance(outcome, BaseException):
                    pending.done.set_exception(outcome)
                else:
                    pending.done.set_result(outcome)
            if checkpoint:
                async with self._lock():
                    await self._checkpoint()
            elif self._pending:
                await asyncio.sleep(0)  # callers resume, other work runs, then the next group

    async def _run_group_inline(self, group: list[_Pending]) -> list[int | BaseException] | None:
        """``_group_steps`` on the loop thread, the loop turning between two writes (a
        resolution waits for one write, not for the group); None at once, nothing done, if
        another connection holds the write lock (``busy_timeout`` 0 for the ``BEGIN``;
        SQLite waits for no lock after it in WAL mode)."""
        conn = self._wconn
        assert conn is not None
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_BUSY:
                    return None
                raise
            finally:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms:d}")
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        outcomes: list[int | BaseException] = []
        steps = self._group_steps(conn, group, outcomes)
        try:
            for _ in steps:
                await asyncio.sleep(0)
        finally:
            steps.close()  # cancelled between two writes: the generator rolls back
        return outcomes

    def _run_group(self, group: list[_Pending]) -> list[int | BaseException]:
        """``_group_steps`` on the writer thread, its ``BEGIN`` waiting for the lock."""
        conn = self._wconn
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        outcomes: list[int | BaseException] = []
        for _ in self._group_steps(conn, group, outcomes):
            pass
        return outcomes

    def _group_steps(
        self, conn: sqlite3.Connection, group: list[_Pending], outcomes: list[int | BaseException]
    ) -> Iterator[None]:
        """In the transaction just begun: the group's writes, a savepoint each (its serial
        or its error into ``outcomes``), then COMMIT; ROLLBACK if anything escapes, closing
        the generator included. Yields between two writes."""
        try:
            for n, pending in enumerate(group):
                if n:
                    yield
                conn.execute("SAVEPOINT write")
                try:
                    serial = pending.fn(conn, *pending.args)
                    if pending.effects:
                        self._apply(conn, pending.effects, serial)
                except Exception as exc:
                    if not conn.in_transaction:  # SQLite gave the whole transaction up
                        raise
                    conn.execute("ROLLBACK TO write")
                    conn.execute("RELEASE write")
                    outcomes.append(_translate(exc) if isinstance(exc, sqlite3.Error) else exc)
                else:
                    conn.execute("RELEASE write")
                    outcomes.append(serial)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc) from exc
            raise

    def _count_commit(self) -> bool:
        """Count a commit: True after every ``_CHECKPOINT_EVERY``, time for ``_checkpoint``."""
        self._commits += 1
        if self._commits < _CHECKPOINT_EVERY:
            return False
        self._commits = 0
        return True

    async def _checkpoint_if_due(self) -> None:
        """After a transaction of the writer thread, holding ``_lock()``: count its commit
        and checkpoint when due. (A group's is counted, and its checkpoint run, after its
        callers have their answers: ``_commit_pending``.)"""
        if self._count_commit():
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database on the writer thread. Call it holding ``_lock()``.

        Why here: a checkpoint in the COMMIT (SQLite's autocheckpoint) would now run on the
        loop; one on a thread of its own, beside the next writes, is never complete when a
        write begins, and only a write beginning on a completely copied WAL starts it over:
        it grew by every write, a gigabyte in a minute of creates. Between two transactions,
        with the writes waiting for the lock (not the loop), it completes unless a reader
        still needs the old frames, and the next write reuses the file from its start.
        """
        conn = self._wconn
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(
                self._writer, _passive_checkpoint, conn
            )

    def _lock(self) -> asyncio.Lock:
        """Writes wait while a governance transaction (``atomic``) holds the connection."""
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        return self._write_lock

    def _apply(self, conn: sqlite3.Connection, effects: Effects, serial: int) -> None:
        steps = apply_effects(
            effects, now=int(self._clock()), serial=serial, encode_record=encode_record
        )
        run_steps(conn, steps)

    # -- governance --------------------------------------------------------------------------------
    async def apply(self, effects: Effects, *, logged: bool = True) -> int:
        if logged:
            return await self._write(
                lambda conn: self._log(conn, effects.action, effects.target), effects=effects
            )
        if effects.states_changed or effects.audit or effects.versions:
            raise ValueError("states, history and audit are always logged: others follow them")
        return await self._write(_last_serial, effects=effects)

    @asynccontextmanager
    async def atomic(self, action: str = "registry", target: str = "") -> AsyncIterator[Atomic]:
        if self._writer is None or self._wconn is None:
            raise RuntimeError("store is not open")
        loop, executor, conn = asyncio.get_running_loop(), self._writer, self._wconn

        async def run(fn: Callable[[], T]) -> T:
            def guarded() -> T:
                try:
                    return fn()
                except sqlite3.Error as exc:
                    raise _translate(exc) from exc

            return await loop.run_in_executor(executor, guarded)

        def begin() -> int:
            conn.execute("BEGIN IMMEDIATE")
            try:
                return self._log(conn, action, target)
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        async with self._lock():
            serial = await run(begin)
            try:
                yield _SQLiteAtomic(self, conn, run, serial)
            except BaseException:
                await run(lambda: conn.execute("ROLLBACK"))
                raise
            await run(lambda: conn.execute("COMMIT"))
            await self._checkpoint_if_due()
        self._announce(serial)

    async def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        text = for_sqlite(sql)
        return await self._scan(lambda c: _dicts(c.execute(text, args)))

    async def query_point(self, sql: str, *args: Any) -> dict[str, Any] | None:
        text = for_sqlite(sql)
        rows = await self._point(lambda c: _dicts(c.execute(text, args)))
        return rows[0] if rows else None

    # -- announcing writes -----------------------------------------------------------------------
    async def subscribe(self, callback: SerialCallback) -> None:
        """Own writes are announced as they commit; other processes' within ``poll_interval``.

        Polling reads ``PRAGMA data_version``, which changes only when another connection
        commits, so an idle store costs one tiny query per interval.
        """
        if self._writer is None:
            raise RuntimeError("store is not open")
        if self._poller is None:
            # version first, then serial, both before returning: a commit landing in between
            # or right after we return is then either counted in the serial or seen as a change
            version = await self._point(_data_version)
            self._announced = max(self._announced, await self.serial())
            self._poller = asyncio.get_running_loop().create_task(self._poll(version))
        self._subscribers.append(callback)

    def _announce(self, serial: int) -> None:
        if serial <= self._announced:
            return
        self._announced = serial
        for callback in list(self._subscribers):
            try:
                callback(serial)
            except Exception:
                log.exception("store subscriber failed")

    async def _poll(self, version: int) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                now = await self._point(_data_version)
                if now != version:
                    version = now
                    self._announce(await self.serial())
            except IdnodeError as exc:  # a busy file: try again next interval
                log.debug("store poll: %s", exc)

    def _log(self, conn: sqlite3.Connection, action: str, handle: str) -> int:
        cur = conn.execute(
            "INSERT INTO txlog (timestamp, action, handle) VALUES (?, ?, ?)",
            (int(self._clock()), action, handle),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    # -- reads -----------------------------------------------------------------------------------
    async def get_handle(self, handle: str) -> list[HandleValue] | None:
        key = handle_key(handle)
        return await self._point(lambda c: _read_record(c, key))

    async def public_answer(self, handle: str) -> PublicAnswer | None:
        key = handle_key(handle)
        return await self._point(lambda c: _read_answer(c, key))

    def public_answer_now(self, handle: str) -> PublicAnswer | None:
        conn = self._rconn
        if conn is None:
            return None
        try:
            return _read_answer(self._turn_snapshot(conn), handle_key(handle))
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    def public_wire_now(self, handle: str) -> StoredWire | None:
        cursor = self._rcursor
        if cursor is None:
            return None
        try:
            if not self._snapshot_open:
                self._turn_snapshot(cursor.connection)
            row = cursor.execute(_GET_WIRE, (handle_key(handle),)).fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        if row is None or not row[0]:  # none, or NOT_SERVED
            return None
        return StoredWire(row[0], row[1] == 1)

    async def fill_public_answers(self, after: str = "", batch: int = 1000) -> str | None:
        encode = self._answers
        if encode is None:
            return None
        last: list[str] = []

        def tx(conn: sqlite3.Connection) -> int:
            if not after:  # a fill starts: done already, or marked as running
                if conn.execute(_FILLED).fetchone() is not None:
                    return _last_serial(conn)
                conn.execute(_UNFILLED)
                conn.execute(_FILL_STARTED)
            keys = [r[0] for r in conn.execute(_KEYS_WITHOUT_ANSWERS, (after, batch))]
            rows = []
            for key in keys:
                values = _read_record(conn, key)
                if values is not None:
                    rows.append(_answer_row(key, encode(values) or NOT_SERVED))
            conn.executemany(_PUT_ANSWER, rows)
            if len(keys) < batch:  # the last batch: complete unless a write cleared the mark
                conn.execute(_FILL_DONE)
            else:
                last.extend(keys[-1:])
            return _last_serial(conn)  # nothing logged: no answer changes

        await self._write(tx, alone=True)
        return last[0] if last else None

    def _refresh_answer(
        self, conn: sqlite3.Connection, key: str, record: list[HandleValue] | None = None
    ) -> None:
        """Replace the stored public answer of ``key`` by one of its record as it now is (in
        the write's transaction), or drop it without an encoder or a record. ``record``: the
        values just written as the whole record (a create), so it need not be read back."""
        answer = None
        if self._answers is not None:
            values = _read_record(conn, key) if record is None else record
            if values is not None:
                answer = self._answers(values) or NOT_SERVED
        if answer is None:
            conn.execute(_DROP_ANSWER, (key,))
            conn.execute(_UNFILLED)  # a record without its answer: the next fill walks
        else:
            conn.execute(_PUT_ANSWER, _answer_row(key, answer))

    async def list_handles(
        self, prefix: str, *, offset: int = 0, limit: int | None = None
    ) -> list[str]:
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError("offset and limit must not be negative")
        sql = "SELECT handle FROM handles WHERE prefix = ? ORDER BY key LIMIT ? OFFSET ?"
        args = (handle_key(prefix), -1 if limit is None else limit, offset)
        return await self._scan(lambda c: [r[0] for r in c.execute(sql, args)])

    async def count_handles(self, prefix: str) -> int:
        sql = "SELECT count(*) FROM handles WHERE prefix = ?"
        return await self._scan(lambda c: c.execute(sql, (handle_key(prefix),)).fetchone()[0])

    async def homed_prefixes(self) -> list[str]:
        sql = "SELECT prefix FROM homed_prefixes ORDER BY key"
        return await self._point(lambda c: [r[0] for r in c.execute(sql)])

    async def serial(self) -> int:
        return await self._point(_last_serial)

    async def transactions(self, since: int = 0, limit: int = 1000) -> list[Transaction]:
        sql = (
            "SELECT serial, timestamp, action, handle FROM txlog WHERE serial > ?"
            " ORDER BY serial LIMIT ?"
        )
        return await self._scan(
            lambda c: [Transaction(*r) for r in c.execute(sql, (since, max(limit, 0)))]
        )

    # -- writes ----------------------------------------------------------------------------------
    async def create_handle(
        self,
        handle: str,
        values: Sequence[HandleValue],
        *,
        overwrite: bool = False,
        effects: Effects = NO_EFFECTS,
    ) -> int:
        return await self._write(self._create, handle, values, overwrite, effects=effects)

    def _create(
        self,
        conn: sqlite3.Connection,
        handle: str,
        values: Iterable[HandleValue],
        overwrite: bool,
        action: str = "create",
    ) -> int:
        handle = check_handle_name(handle)
        values = check_values(values)
        key = handle_key(handle)
        if conn.execute("SELECT 1 FROM handles WHERE key = ?", (key,)).fetchone():
            if not overwrite:
                raise HandleAlreadyExists(f"handle {handle} already exists")
            conn.execute("DELETE FROM handles WHERE key = ?", (key,))  # values cascade
        prefix = prefix_key(handle)
        conn.execute("INSERT INTO handles VALUES (?, ?, ?)", (key, handle, prefix))
        conn.executemany(_INSERT_VALUE, [_value_row(key, v) for v in values])
        self._refresh_answer(conn, key, values)
        return self._log(conn, action, handle)

    async def delete_handle(self, handle: str, *, effects: Effects = NO_EFFECTS) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            key, spelled = _existing(conn, handle)
            conn.execute(_DROP_ANSWER, (key,))  # (the cascade would too, with foreign keys on)
            conn.execute("DELETE FROM handles WHERE key = ?", (key,))
            return self._log(conn, "delete", spelled)

        return await self._write(tx, effects=effects)

    async def add_values(
        self, handle: str, values: Sequence[HandleValue], *, effects: Effects = NO_EFFECTS
    ) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            checked = check_values(values, allow_empty=False)
            key, spelled = _existing(conn, handle)
            present = _present(conn, key, [v.index for v in checked])
            if present:
                raise ValueAlreadyExists(f"handle {spelled} already has index {present[0]}")
            conn.executemany(_INSERT_VALUE, [_value_row(key, v) for v in checked])
            self._refresh_answer(conn, key)
            return self._log(conn, "add", spelled)

        return await self._write(tx, effects=effects)

    async def modify_values(
        self, handle: str, values: Sequence[HandleValue], *, effects: Effects = NO_EFFECTS
    ) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            checked = check_values(values, allow_empty=False)
            key, spelled = _existing(conn, handle)
            _require_all(conn, key, spelled, [v.index for v in checked])
            conn.executemany(_UPDATE_VALUE, [_update_row(key, v) for v in checked])
            self._refresh_answer(conn, key)
            return self._log(conn, "modify", spelled)

        return await self._write(tx, effects=effects)

    async def remove_values(
        self, handle: str, indexes: Sequence[int], *, effects: Effects = NO_EFFECTS
    ) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            checked = check_indexes(indexes)
            key, spelled = _existing(conn, handle)
            _require_all(conn, key, spelled, checked)
            sql = "DELETE FROM handle_values WHERE key = ? AND idx = ?"
            conn.executemany(sql, [(key, i) for i in checked])
            self._refresh_answer(conn, key)
            return self._log(conn, "remove", spelled)

        return await self._write(tx, effects=effects)

    async def home_prefix(self, prefix: str, *, effects: Effects = NO_EFFECTS) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            key = handle_key(check_prefix(prefix))
            if conn.execute("SELECT 1 FROM homed_prefixes WHERE key = ?", (key,)).fetchone():
                raise HandleAlreadyExists(f"prefix {prefix} is already homed")
            conn.execute("INSERT INTO homed_prefixes VALUES (?, ?)", (key, prefix))
            return self._log(conn, "home", prefix)

        return await self._write(tx, effects=effects)

    async def unhome_prefix(self, prefix: str, *, effects: Effects = NO_EFFECTS) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            key = handle_key(check_prefix(prefix))
            row = conn.execute("SELECT prefix FROM homed_prefixes WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise HandleNotFound(f"prefix {prefix} is not homed")
            conn.execute("DELETE FROM homed_prefixes WHERE key = ?", (key,))
            return self._log(conn, "unhome", row[0])

        return await self._write(tx, effects=effects)

    async def load(
        self,
        records: Iterable[tuple[str, Sequence[HandleValue]]],
        *,
        overwrite: bool = False,
        effects: Effects = NO_EFFECTS,
    ) -> int:
        """All records in one transaction, one log row each; an empty load writes nothing.

        ``records`` is consumed on the writer thread, so a generator streaming a big file is
        never materialised; if it raises, nothing is written.
        """

        def tx(conn: sqlite3.Connection) -> int:
            batch: list[tuple[str, Sequence[HandleValue]]] = []
            for record in records:
                batch.append(record)
                if len(batch) >= LOAD_BATCH:
                    self._load_batch(conn, batch, overwrite)
                    batch = []
            if batch:
                self._load_batch(conn, batch, overwrite)
            return _last_serial(conn)

        return await self._write(tx, alone=True, effects=effects)

    def _load_batch(
        self,
        conn: sqlite3.Connection,
        batch: list[tuple[str, Sequence[HandleValue]]],
        overwrite: bool,
    ) -> None:
        """Write many records with one statement per table: bulk import's hot loop.

        Per-record statements cost ~5x more than the rows themselves; here each table gets one
        ``executemany`` per batch. A handle that exists (without ``overwrite``) or appears
        twice is reported by name; the caller rolls back.
        """
        records: dict[str, tuple[str, list[HandleValue]]] = {}
        handle_rows, log_rows = [], []
        now = int(self._clock())
        for handle, values in batch:
            handle = check_handle_name(handle)
            key = handle_key(handle)
            if key in records and not overwrite:
                raise HandleAlreadyExists(f"handle {handle} already exists")
            records[key] = (handle, check_values(values))  # with overwrite the last one wins
            log_rows.append((now, "load", handle))
        value_rows = []
        for key, (handle, values) in records.items():
            prefix = prefix_key(handle)
            handle_rows.append((key, handle, prefix))
            value_rows.extend(_value_row(key, v) for v in values)
        if overwrite:
            keys = [(r[0],) for r in handle_rows]
            conn.executemany(_DROP_ANSWER, keys)
            conn.executemany("DELETE FROM handles WHERE key = ?", keys)
        _insert_handles(conn, handle_rows, overwrite)
        conn.executemany(_INSERT_VALUE, value_rows)
        encode = self._answers
        if encode is not None:
            answers = ((key, encode(values) or NOT_SERVED) for key, (_, values) in records.items())
            conn.executemany(_PUT_ANSWER, [_answer_row(k, a) for k, a in answers])
        elif records:
            conn.execute(_UNFILLED)
        conn.executemany("INSERT INTO txlog (timestamp, action, handle) VALUES (?, ?, ?)", log_rows)

    async def load_rows(
        self,
        groups: Iterable[RowGroup],
        *,
        overwrite: bool = False,
        effects: Effects = NO_EFFECTS,
    ) -> int:
        """``load`` of row groups with one multi-row statement per record and layout.

        Why: in ``load`` most of the time goes to binding nine parameters per value row
        (~1.6 us each in the sqlite3 module, more than SQLite's own work). Here a layout's
        index, type, permissions, TTL, timestamp and references are checked once and written
        into the statement as literals, so each record binds only its key and its data, and
        one statement execution inserts all of its values.

        The groups are checked, keyed and encoded on a worker thread before the transaction,
        while the writer thread may still be copying the previous batch into the file (see
        ``_checkpoint_load``); the transaction then only runs the prepared statements. So a
        load holds its groups' rows in memory (bulk import passes one batch at a time).
        """
        now = int(self._clock())
        prepared = await asyncio.to_thread(self._prepare_load, groups, overwrite, now)

        def tx(conn: sqlite3.Connection) -> int:
            for group in prepared:
                _write_load_group(conn, group, overwrite)
            return _last_serial(conn)

        # Foreign-key checks cost ~12% of a load and cannot fail here: every value row's key
        # is a handle row inserted just before it, in the same transaction. An overwrite
        # needs them (its DELETE cascades to the old values), so it keeps them.
        serial = await self._write(tx, alone=True, foreign_keys=overwrite, effects=effects)
        if self._load_checkpoint is None or self._load_checkpoint.done():
            self._load_checkpoint = asyncio.get_running_loop().create_task(self._checkpoint_load())
        return serial

    async def _checkpoint_load(self) -> None:
        """Copy a bulk load's batch into the file before the next write begins.

        Why: the next batch then writes the WAL over from its start. Run beside the next
        batch (on a thread of its own), a checkpoint never completed before that batch
        began, so the WAL grew by every batch (831 MB after 300,000 records) and growing it
        (new pages zeroed, frames straddling them) cost a third of the import's CPU. Run
        right after the COMMIT, before ``load_rows`` returned, it made the import wait for
        the copy and its fsyncs (~100 ms a batch). As a task holding the write lock, the
        next write waits for it while the next batch is read and prepared.
        """
        try:
            async with self._lock():
                await self._checkpoint()
        except Exception as exc:  # the store closing under it; the next checkpoint copies
            log.debug("sqlite checkpoint after a load: %s", exc)

    def _prepare_load(
        self, groups: Iterable[RowGroup], overwrite: bool, now: int
    ) -> list[_LoadGroup]:
        """Every group's rows, checked and keyed, with their stored answers encoded.

        Raises what ``load`` raises for the expanded records (a handle that exists twice in
        the load among them), before anything is written.
        """
        seen: set[str] = set()
        prefixes: dict[str, str] = {}
        out = []
        for group in groups:
            group = check_row_group(group)
            prepared = self._prepare_load_group(group, overwrite, seen, prefixes, now)
            if prepared is not None:
                out.append(prepared)
        return out

    def _prepare_load_group(
        self,
        group: RowGroup,
        overwrite: bool,
        seen: set[str],
        prefixes: dict[str, str],
        now: int,
    ) -> _LoadGroup | None:
        """One group's rows; ``seen`` holds the keys of earlier groups of the same load."""
        layout = group.layout
        final: dict[str, tuple[str, tuple[bytes, ...]]] = {}  # key -> last record of the key
        log_rows = []
        for handle, datas in group.rows:
            handle, datas = check_row(handle, datas, layout)
            key = handle_key(handle)
            if not overwrite and (key in final or key in seen):
                raise HandleAlreadyExists(f"handle {handle} already exists")
            final[key] = (handle, datas)
            log_rows.append((handle,))
        if not final:
            return None
        seen.update(final)
        handle_rows = []
        for key, (handle, _) in final.items():
            name = prefix_part(handle)
            prefix = None
            if len(name) < len(handle):  # has a slash; keys computed once per prefix
                prefix = prefixes.get(name)
                if prefix is None:
                    prefix = prefixes[name] = handle_key(name)
            handle_rows.append((key, handle, prefix))
        answer_rows = None
        if self._answers is not None:
            encode = layout_answers(self._answers, layout)
            answer_rows = [_answer_row(k, encode(d) or NOT_SERVED) for k, (_, d) in final.items()]
        values_sql, value_rows = None, []
        if layout:
            values_sql = _values_sql(layout)
            if values_sql is not None:
                value_rows = [(key, *datas) for key, (_, datas) in final.items()]
            else:  # a type or reference the statement cannot spell: one row per value
                values_sql = _INSERT_VALUE
                value_rows = [
                    _value_row(key, replace(v, data=d))
                    for key, (_, datas) in final.items()
                    for v, d in zip(layout, datas, strict=True)
                ]
        log_sql = f"INSERT INTO txlog (timestamp, action, handle) VALUES ({now:d}, 'load', ?)"
        return _LoadGroup(handle_rows, answer_rows, values_sql, value_rows, log_sql, log_rows)


@dataclass(slots=True)
class _LoadGroup:
    """One group of a bulk load, ready for its statements (``SQLiteStore.load_rows``)."""

    handle_rows: list[tuple[str, str, str | None]]
    answer_rows: list[tuple[Any, ...]] | None  # None: written without the encoder
    values_sql: str | None  # None: a layout without values
    value_rows: list[tuple[Any, ...]]
    log_sql: str  # the load's timestamp written in
    log_rows: list[tuple[str]]


def _write_load_group(conn: sqlite3.Connection, group: _LoadGroup, overwrite: bool) -> None:
    """Run one prepared group's statements, in the load's transaction."""
    if overwrite:
        keys = [(row[0],) for row in group.handle_rows]
        conn.executemany(_DROP_ANSWER, keys)
        conn.executemany("DELETE FROM handles WHERE key = ?", keys)
    _insert_handles(conn, group.handle_rows, overwrite)
    if group.answer_rows is not None:
        conn.executemany(_PUT_ANSWER, group.answer_rows)
    else:
        conn.execute(_UNFILLED)
    if group.values_sql is not None:
        conn.executemany(group.values_sql, group.value_rows)
    conn.executemany(group.log_sql, group.log_rows)


@dataclass(slots=True)
class _Pending:
    """A write waiting for its group's commit (``SQLiteStore._commit_pending``)."""

    fn: Callable[..., int]
    args: tuple[Any, ...]
    effects: Effects
    done: asyncio.Future[int]


# -- helpers (run on whichever thread owns ``conn``) --------------------------------------------
def _insert_handles(
    conn: sqlite3.Connection, handle_rows: list[tuple[str, str, str | None]], overwrite: bool
) -> None:
    """Insert ``handles`` rows; a clash is reported by the name of the handle that existed.

    The insert runs in a savepoint: ``executemany`` keeps the rows it inserted before the
    failing one, and without rolling those back each of them would look like the clash.
    """
    conn.execute("SAVEPOINT load_handles")
    try:
        conn.executemany("INSERT INTO handles VALUES (?, ?, ?)", handle_rows)
    except sqlite3.IntegrityError:
        conn.execute("ROLLBACK TO load_handles")
        conn.execute("RELEASE load_handles")
        if not overwrite:
            for key, handle, _ in handle_rows:
                if conn.execute("SELECT 1 FROM handles WHERE key = ?", (key,)).fetchone():
                    raise HandleAlreadyExists(f"handle {handle} already exists") from None
        raise IdnodeError("sqlite store: load conflicts with an existing handle") from None
    conn.execute("RELEASE load_handles")


@functools.lru_cache(maxsize=256)
def _values_sql(layout: tuple[HandleValue, ...]) -> str | None:
    """The statement inserting one record of ``layout``: ``?1`` is the key, ``?2``... the data.

    Everything but key and data is a literal: ints from a checked layout, and text quoted
    SQL-style. Text that is not printable (NUL, control characters, lone surrogates) gets
    None, and the caller binds it row by row instead.
    """
    rows = []
    for n, v in enumerate(layout, 2):
        refs = encode_refs(v.references)
        if not v.type.isprintable() or (refs is not None and not refs.isprintable()):
            return None
        rows.append(
            f"(?1, {int(v.index):d}, {_sql_text(v.type)}, ?{n}, {int(v.permissions):d},"
            f" {int(v.ttl_type):d}, {int(v.ttl):d}, {int(v.timestamp):d},"
            f" {'NULL' if refs is None else _sql_text(refs)})"
        )
    return "INSERT INTO handle_values VALUES " + ", ".join(rows)


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _connect(path: str, busy_ms: int, *, readonly: bool) -> sqlite3.Connection:
    # isolation_level=None: no implicit BEGINs; transactions are exactly the ones we issue.
    # check_same_thread=False: each connection is still used by one thread only, but it is
    # created and closed on the loop thread.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in _PRAGMAS:
        conn.execute(pragma)
    conn.execute(f"PRAGMA busy_timeout = {busy_ms:d}")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to ``SCHEMA_VERSION``, one transaction per step; return the version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise IdnodeError(
            f"sqlite store: schema version {version} is newer than this idnode ({SCHEMA_VERSION})"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[target - 1]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION


def _translate(exc: sqlite3.Error) -> IdnodeError:
    """Engine errors leave the store as ``idnode.errors`` (busy/locked -> ServerBusy)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return ServerBusy(f"sqlite store busy: {exc}")
    return IdnodeError(f"sqlite store: {exc}")


def _passive_checkpoint(conn: sqlite3.Connection) -> None:
    """Copy what the WAL holds into the database, as far as readers allow; a busy file
    (another process checkpointing) is left to the next pass."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as exc:
        log.debug("sqlite checkpoint: %s", exc)


def _data_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA data_version").fetchone()[0]


def _last_serial(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'txlog'").fetchone()
    return 0 if row is None else row[0]


def _read_record(conn: sqlite3.Connection, key: str) -> list[HandleValue] | None:
    return record_from_rows(conn.execute(_GET, (key,)).fetchall())


def _read_answer(conn: sqlite3.Connection, key: str) -> PublicAnswer | None:
    row = conn.execute(_GET_ANSWER, (key,)).fetchone()
    if row is None or not row[0]:  # none, or NOT_SERVED
        return None
    return PublicAnswer(row[0], row[1], bool(row[2]))


def _answer_row(key: str, answer: PublicAnswer) -> tuple[Any, ...]:
    return (key, answer.wire, answer.json, int(answer.restricted))


def _value_row(key: str, v: HandleValue) -> tuple[Any, ...]:
    return (key, v.index, *_value_fields(v))


def _update_row(key: str, v: HandleValue) -> tuple[Any, ...]:
    return (*_value_fields(v), key, v.index)


def _value_fields(v: HandleValue) -> tuple[Any, ...]:
    return (
        v.type, bytes(v.data), int(v.permissions), int(v.ttl_type), v.ttl, v.timestamp,
        encode_refs(v.references),
    )  # fmt: skip


def _existing(conn: sqlite3.Connection, handle: str) -> tuple[str, str]:
    """(key, spelling) of an existing handle, or HandleNotFound."""
    key = handle_key(check_handle_name(handle))
    row = conn.execute("SELECT handle FROM handles WHERE key = ?", (key,)).fetchone()
    if row is None:
        raise HandleNotFound(f"handle {handle} not found")
    return key, row[0]


def _present(conn: sqlite3.Connection, key: str, indexes: list[int]) -> list[int]:
    """Those of ``indexes`` the handle has, sorted."""
    sql = "SELECT 1 FROM handle_values WHERE key = ? AND idx = ?"
    return sorted(i for i in indexes if conn.execute(sql, (key, i)).fetchone())


def _require_all(conn: sqlite3.Connection, key: str, spelled: str, indexes: list[int]) -> None:
    missing = sorted(set(indexes) - set(_present(conn, key, indexes)))
    if missing:
        raise ValueNotFound(f"handle {spelled} has no value at index {missing[0]}")


class _SQLiteAtomic:
    """``Store.atomic`` on the writer thread: each call is one hop to it, inside the one
    transaction the store's lock keeps to this block."""

    def __init__(self, store: SQLiteStore, conn: sqlite3.Connection, run, serial: int) -> None:
        self._store, self._conn, self._run, self.serial = store, conn, run, serial

    async def execute(self, sql: str, *args: Any) -> int:
        text = for_sqlite(sql)
        return await self._run(lambda: self._conn.execute(text, args).rowcount)

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        text = for_sqlite(sql)
        return await self._run(lambda: _dicts(self._conn.execute(text, args)))

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else next(iter(row.values()))

    async def apply(self, effects: Effects) -> None:
        await self._run(lambda: self._store._apply(self._conn, effects, self.serial))


def run_steps(conn: sqlite3.Connection, steps) -> None:
    """Drive a sans-I/O statement generator (``governance.apply_effects``) on ``conn``."""
    try:
        op: Op = next(steps)
        while True:
            cur = conn.execute(for_sqlite(op.sql), op.args)
            op = steps.send(cur.rowcount if op.kind == "execute" else cur.fetchone())
    except StopIteration:
        pass


def _dicts(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
