"""The scale-out engine: PostgreSQL through an asyncpg connection pool.

Several idnode processes, on several machines, can share one registry in one PostgreSQL
schema; each sees every other's writes the moment they commit, and learns of them through
``subscribe`` (LISTEN/NOTIFY on the commit serial) to invalidate its response cache.

Serials, and why a counter row: the transaction log must count 1, 2, 3 ... without gaps and in
commit order, so a reader that has seen serial N has seen every write up to N. A sequence
cannot do that (``nextval`` is not rolled back, and serials taken in one order can commit in
another). Instead each write, as its *last* statement, increments the one row of
``serial_counter``: the row lock it takes is held until COMMIT, so the next writer waits for
that commit and then reads the incremented value, and a rollback undoes the increment. An
advisory lock plus ``max(serial) + 1`` would do the same, but needs a database-wide lock key
per schema and is invisible in the schema; the counter row is self-describing, per schema and
makes ``serial()`` one row read. Taking it last keeps it held only for the log insert and the
commit, so writers to different handles do their own work concurrently and only their commits
queue. Writes to one handle are serialised by ``SELECT ... FOR UPDATE`` on its row, so "check
then change" (index present? handle exists?) holds until commit, as SQLite's single writer
guarantees.

Each write is one transaction of a few round trips: BEGIN, the change (values travel as
column arrays through ``unnest``: one statement whatever their number), the log statement
(counter + txlog row + ``pg_notify``), COMMIT. ``load`` streams records in batches through
COPY. The NOTIFY is queued inside the transaction, so PostgreSQL sends it exactly when, and
only if, the write commits, in commit order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from idnode.errors import (
    HandleAlreadyExists,
    HandleNotFound,
    IdnodeError,
    InvalidHandle,
    InvalidValue,
    ServerBusy,
    ValueAlreadyExists,
    ValueNotFound,
)
from idnode.model import HandleValue, PublicAnswer, handle_key
from idnode.names import prefix_key
from idnode.store.base import (
    NOT_SERVED,
    AnswerEncoder,
    Atomic,
    RowGroup,
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
from idnode.store.batched_reads import MAX_INFLIGHT, BatchedReads
from idnode.store.capture import NUMBERED_TABLES
from idnode.store.effects import NO_EFFECTS, Effects
from idnode.store.governance import Op, apply_effects
from idnode.store.portable import for_postgres
from idnode.store.postgres_listen import SerialCallback, SerialListener
from idnode.store.postgres_schema import Statements, channel_of, check_schema_name, migrate
from idnode.store.rows import encode_record, encode_refs, record_from_rows

T = TypeVar("T")

LOAD_BATCH = 5000  # records per COPY round: bounded memory, few round trips

# Enum members built once: constructing IntFlag values per row is measurable on the hot path.

# SQLSTATE classes that mean "try again later", not "your request was wrong": connection
# exceptions, transaction rollback (serialization failure, deadlock), insufficient resources
# (too many connections, disk full), operator intervention (shutdown, cancel, cannot connect
# now), and lock_not_available.
_BUSY_CLASSES = frozenset({"08", "40", "53", "57"})
_BUSY_STATES = frozenset({"55P03"})
# Every exception asyncpg raises for a failed call (InternalClientError: the connection's
# protocol state broke, e.g. the server killed it while idle).
_ENGINE_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)
_CONSTRAINT_ERRORS: dict[str, type[IdnodeError]] = {
    "handles_pkey": HandleAlreadyExists,
    "handle_values_pkey": ValueAlreadyExists,
    "homed_prefixes_pkey": HandleAlreadyExists,
    "handle_values_key_fkey": HandleNotFound,
}


class PostgresStore(Store):
    """``Store`` in one PostgreSQL schema. ``clock`` (wall seconds, from the caller) stamps
    transaction-log rows."""

    def __init__(
        self,
        dsn: str,
        *,
        clock: Callable[[], float],
        min_size: int = 1,
        max_size: int = 10,
        schema: str = "idnode",
        acquire_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        answers: AnswerEncoder | None = None,
    ) -> None:
        """``acquire_timeout``: how long a call waits for a free pooled connection before
        raising ServerBusy (the node sheds load rather than queueing without bound).
        ``answers``: keep each record's public answer (``Store.public_answer``); without it
        every write drops the record's stored answer instead."""
        self.dsn = dsn
        self.schema = check_schema_name(schema)
        self.channel = channel_of(self.schema)
        self._clock = clock
        self._sizes = (min_size, max_size)
        self._acquire_timeout = acquire_timeout
        self._connect_kwargs: dict[str, Any] = {"timeout": connect_timeout}
        self._sql = Statements(self.schema)
        self._answers = answers
        self._pool: asyncpg.Pool | None = None
        self._may_skip_triggers = True  # until the server says the role may not
        self._listener: SerialListener | None = None
        # the store path's keyed reads, sent together when they arrive together
        self._answer_reads: BatchedReads[str, PublicAnswer] = BatchedReads(
            self._public_answers, max_inflight=max(1, min(MAX_INFLIGHT, max_size // 2))
        )

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> PostgresStore:
        """A store from ``postgresql://user@host:port/db?schema=name&pool_max=20``.

        ``schema``, ``pool_min`` and ``pool_max`` are ours and are taken out of the URL; every
        other parameter (sslmode, ...) goes to asyncpg, which would otherwise send unknown
        parameters to the server as settings.
        """
        parts = urlsplit(url)
        ours = {"schema": "schema", "pool_min": "min_size", "pool_max": "max_size"}
        rest = []
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name in ours:
                kwargs.setdefault(ours[name], value if name == "schema" else int(value))
            else:
                rest.append((name, value))
        dsn = urlunsplit(parts._replace(query=urlencode(rest)))
        return cls(dsn, **kwargs)

    # -- lifecycle -------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self._sizes[0],
                max_size=self._sizes[1],
                reset=_keep_session,
                **self._connect_kwargs,
            )
        except Exception as exc:
            raise _translate(exc, "cannot connect") from exc
        try:
            async with pool.acquire(timeout=self._acquire_timeout) as conn:
                await migrate(conn, self.schema)
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, IdnodeError | asyncio.CancelledError):
                raise
            if isinstance(exc, Exception):
                raise _translate(exc, "cannot migrate") from exc
            raise
        self._pool = pool

    async def close(self) -> None:
        """Stop listening, let running calls finish, close every connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def subscribe(self, callback: SerialCallback) -> None:
        """Call ``callback(serial)`` on the loop for every write committed from now on, by any
        process on this schema; returns once listening.

        A ``load`` is announced once, with its last serial. After a lost connection is
        re-opened the callback gets the current serial, as notices sent meanwhile are lost.
        Callbacks must be quick and must not raise (a raise is logged and ignored).
        """
        if self._pool is None:
            raise RuntimeError("store is not open")
        if self._listener is None:
            self._listener = SerialListener(
                self.dsn, self.channel, self._sql.serial, self._connect_kwargs
            )
        try:
            await self._listener.add(callback)
        except Exception as exc:
            self._listener = None
            raise _translate(exc, "cannot listen") from exc

    # -- plumbing --------------------------------------------------------------------------------
    async def _read(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run ``fn`` on a pooled connection (each statement is its own snapshot)."""
        if self._pool is None:
            raise RuntimeError("store is not open")
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as conn:
                try:
                    return await fn(conn)
                except asyncpg.exceptions.InternalClientError:
                    conn.terminate()  # unusable: the pool replaces it on release
                    raise
        except _ENGINE_ERRORS as exc:
            raise _translate(exc) from exc

    async def _write(
        self, fn: Callable[..., Awaitable[int]], *args: Any, effects: Effects = NO_EFFECTS
    ) -> int:
        """Run ``fn(conn, *args)`` and then ``effects`` as one transaction; its serial."""
        if self._pool is None:
            raise RuntimeError("store is not open")
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as conn:
                try:
                    async with conn.transaction():
                        serial = await fn(conn, *args)
                        if effects:
                            await self._apply(conn, effects, serial)
                        return serial
                except asyncpg.exceptions.InternalClientError:
                    conn.terminate()
                    raise
        except _SourceFailed as exc:  # the caller's records iterator raised: give it back
            raise exc.original from exc.original.__cause__
        except _ENGINE_ERRORS as exc:
            raise _translate(exc) from exc

    async def _apply(self, conn: asyncpg.Connection, effects: Effects, serial: int) -> None:
        steps = apply_effects(
            effects, now=int(self._clock()), serial=serial, encode_record=encode_record
        )
        await run_steps(conn, steps, self.schema)

    # -- governance --------------------------------------------------------------------------------
    async def apply(self, effects: Effects, *, logged: bool = True) -> int:
        if logged:
            return await self._write(
                lambda conn: self._log(conn, effects.action, effects.target), effects=effects
            )
        if effects.states_changed or effects.audit or effects.versions:
            raise ValueError("states, history and audit are always logged: others follow them")
        return await self._write(lambda conn: conn.fetchval(self._sql.serial), effects=effects)

    @asynccontextmanager
    async def atomic(self, action: str = "registry", target: str = "") -> AsyncIterator[Atomic]:
        if self._pool is None:
            raise RuntimeError("store is not open")
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as conn:
                async with conn.transaction():
                    serial = await self._log(conn, action, target)  # writers queue here
                    yield _PgAtomic(self, conn, serial)
        except _ENGINE_ERRORS as exc:
            raise _translate(exc) from exc

    async def reseed_ids(self) -> None:
        """Identity columns do not follow explicit ids: move each past its table's largest."""
        async with self.atomic("reseed", "ids") as tx:
            for table in NUMBERED_TABLES:
                await tx.fetchval(
                    f"SELECT setval(pg_get_serial_sequence('{self.schema}.{table}', 'id'),"
                    f" coalesce((SELECT max(id) FROM {{s}}.{table}), 0) + 1, false)"
                )

    async def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        text = for_postgres(sql, self.schema)
        return [dict(r) for r in await self._read(lambda c: c.fetch(text, *args))]

    async def _log(self, conn: asyncpg.Connection, action: str, handle: str) -> int:
        row = await conn.fetchrow(self._sql.log, int(self._clock()), action, handle, self.channel)
        return row[0]

    async def _existing(self, conn: asyncpg.Connection, handle: str) -> tuple[str, str]:
        """(key, spelling) of an existing handle, locked until commit; else HandleNotFound."""
        key = handle_key(_check_name(handle))
        spelled = await conn.fetchval(self._sql.lock_handle, key)
        if spelled is None:
            raise HandleNotFound(f"handle {handle} not found")
        return key, spelled

    # -- reads -----------------------------------------------------------------------------------
    async def get_handle(self, handle: str) -> list[HandleValue] | None:
        key = handle_key(handle)
        if "\x00" in key:  # cannot be stored (see _check_name), so it does not exist
            return None
        return record_from_rows(await self._read(lambda c: c.fetch(self._sql.get, key)))

    async def public_answer(self, handle: str) -> PublicAnswer | None:
        key = handle_key(handle)
        if "\x00" in key:
            return None
        return await self._answer_reads.get(key)  # with the others asked meanwhile

    async def _public_answers(self, keys: list[str]) -> dict[str, PublicAnswer]:
        """One query for a batch of ``public_answer`` reads (``batched_reads``)."""
        rows = await self._read(lambda c: c.fetch(self._sql.get_answers, keys))
        # a row without wire bytes is NOT_SERVED: the full path's
        return {row[0]: PublicAnswer(row[1], row[2], row[3]) for row in rows if row[1]}

    async def fill_public_answers(self, after: str = "", batch: int = 1000) -> str | None:
        encode = self._answers
        if encode is None:
            return None
        sql = self._sql

        async def tx(conn: asyncpg.Connection) -> int:
            if not after:  # a fill starts: done already, or marked as running
                if await conn.fetchval(sql.answers_filled) is not None:
                    return 0
                await conn.execute(sql.answers_unfilled)
                await conn.execute(sql.answers_fill_started)
            missing = [r[0] for r in await conn.fetch(sql.keys_without_answers, after, batch)]
            if len(missing) < batch:  # the last batch: complete unless a write cleared the mark
                await conn.execute(sql.answers_fill_done)
            else:
                last.extend(missing[-1:])
            records: dict[str, list] = {k: [] for k in missing}
            for row in await conn.fetch(sql.values_of, missing) if missing else ():
                records[row[0]].append(tuple(row)[1:])
            answers = (
                (k, encode(record_from_rows(rs) or []) or NOT_SERVED) for k, rs in records.items()
            )
            filled = [(k, *_answer_fields(a)) for k, a in answers]
            if filled:
                await conn.executemany(sql.fill_answer, filled)
            return 0

        last: list[str] = []
        await self._write(tx)
        return last[0] if last else None

    async def _refresh_answer(
        self, conn: asyncpg.Connection, key: str, record: list[HandleValue] | None = None
    ) -> None:
        """Replace the stored public answer of ``key`` by one of its record as it now is (in
        the write's transaction), or drop it without an encoder or a record. ``record``: the
        values just written as the whole record (a create), so it need not be read back."""
        answer = None
        if self._answers is not None:
            if record is None:
                values = record_from_rows(await conn.fetch(self._sql.get, key))
            else:
                values = record
            if values is not None:
                answer = self._answers(values) or NOT_SERVED
        if answer is None:
            await conn.execute(self._sql.drop_answer, key)
            await conn.execute(self._sql.answers_unfilled)  # the next fill walks
        else:
            await conn.execute(self._sql.put_answer, key, *_answer_fields(answer))

    async def list_handles(
        self, prefix: str, *, offset: int = 0, limit: int | None = None
    ) -> list[str]:
        if offset < 0 or (limit is not None and limit < 0):
            raise ValueError("offset and limit must not be negative")
        key = handle_key(prefix)
        if "\x00" in key:
            return []
        rows = await self._read(lambda c: c.fetch(self._sql.list, key, limit, offset))
        return [r[0] for r in rows]

    async def count_handles(self, prefix: str) -> int:
        key = handle_key(prefix)
        if "\x00" in key:
            return 0
        return await self._read(lambda c: c.fetchval(self._sql.count, key))

    async def homed_prefixes(self) -> list[str]:
        return [r[0] for r in await self._read(lambda c: c.fetch(self._sql.homed))]

    async def serial(self) -> int:
        return await self._read(lambda c: c.fetchval(self._sql.serial))

    async def transactions(self, since: int = 0, limit: int = 1000) -> list[Transaction]:
        rows = await self._read(lambda c: c.fetch(self._sql.transactions, since, max(limit, 0)))
        return [Transaction(*r) for r in rows]

    # -- writes ----------------------------------------------------------------------------------
    async def create_handle(
        self,
        handle: str,
        values: Sequence[HandleValue],
        *,
        overwrite: bool = False,
        effects: Effects = NO_EFFECTS,
    ) -> int:
        handle = _check_name(handle)
        checked = _check_values(values)
        key = handle_key(handle)
        prefix = prefix_key(handle)

        async def tx(conn: asyncpg.Connection) -> int:
            if overwrite:
                await conn.fetchval(self._sql.upsert_handle, key, handle, prefix)
                await conn.execute(self._sql.clear_values, key)
            elif await conn.fetchval(self._sql.insert_handle, key, handle, prefix) is None:
                raise HandleAlreadyExists(f"handle {handle} already exists")
            if checked:
                await conn.execute(self._sql.add_values, key, *_columns(checked))
            await self._refresh_answer(conn, key, checked)
            return await self._log(conn, "create", handle)

        return await self._write(tx, effects=effects)

    async def delete_handle(self, handle: str, *, effects: Effects = NO_EFFECTS) -> int:
        key = handle_key(_check_name(handle))

        async def tx(conn: asyncpg.Connection) -> int:
            await conn.execute(self._sql.drop_answer, key)  # (the cascade would too)
            spelled = await conn.fetchval(self._sql.delete_handle, key)
            if spelled is None:
                raise HandleNotFound(f"handle {handle} not found")
            return await self._log(conn, "delete", spelled)

        return await self._write(tx, effects=effects)

    async def add_values(
        self, handle: str, values: Sequence[HandleValue], *, effects: Effects = NO_EFFECTS
    ) -> int:
        checked = _check_values(values, allow_empty=False)

        async def tx(conn: asyncpg.Connection) -> int:
            key, spelled = await self._existing(conn, handle)
            rows = await conn.fetch(self._sql.add_values, key, *_columns(checked))
            if len(rows) != len(checked):  # ON CONFLICT skipped some: roll all back
                present = sorted({v.index for v in checked} - {r[0] for r in rows})
                raise ValueAlreadyExists(f"handle {spelled} already has index {present[0]}")
            await self._refresh_answer(conn, key)
            return await self._log(conn, "add", spelled)

        return await self._write(tx, effects=effects)

    async def modify_values(
        self, handle: str, values: Sequence[HandleValue], *, effects: Effects = NO_EFFECTS
    ) -> int:
        checked = _check_values(values, allow_empty=False)

        async def tx(conn: asyncpg.Connection) -> int:
            key, spelled = await self._existing(conn, handle)
            rows = await conn.fetch(self._sql.modify_values, key, *_columns(checked))
            _require_all(spelled, [v.index for v in checked], rows)
            await self._refresh_answer(conn, key)
            return await self._log(conn, "modify", spelled)

        return await self._write(tx, effects=effects)

    async def remove_values(
        self, handle: str, indexes: Sequence[int], *, effects: Effects = NO_EFFECTS
    ) -> int:
        checked = check_indexes(indexes)

        async def tx(conn: asyncpg.Connection) -> int:
            key, spelled = await self._existing(conn, handle)
            rows = await conn.fetch(self._sql.remove_values, key, checked)
            _require_all(spelled, checked, rows)
            await self._refresh_answer(conn, key)
            return await self._log(conn, "remove", spelled)

        return await self._write(tx, effects=effects)

    async def home_prefix(self, prefix: str, *, effects: Effects = NO_EFFECTS) -> int:
        key = handle_key(_check_name(check_prefix(prefix)))

        async def tx(conn: asyncpg.Connection) -> int:
            if await conn.fetchval(self._sql.home, key, prefix) is None:
                raise HandleAlreadyExists(f"prefix {prefix} is already homed")
            return await self._log(conn, "home", prefix)

        return await self._write(tx, effects=effects)

    async def unhome_prefix(self, prefix: str, *, effects: Effects = NO_EFFECTS) -> int:
        key = handle_key(_check_name(check_prefix(prefix)))

        async def tx(conn: asyncpg.Connection) -> int:
            spelled = await conn.fetchval(self._sql.unhome, key)
            if spelled is None:
                raise HandleNotFound(f"prefix {prefix} is not homed")
            return await self._log(conn, "unhome", spelled)

        return await self._write(tx, effects=effects)

    async def load(
        self,
        records: Iterable[tuple[str, Sequence[HandleValue]]],
        *,
        overwrite: bool = False,
        effects: Effects = NO_EFFECTS,
    ) -> int:
        """All records in one transaction, one log row each; an empty load writes nothing.

        Records are consumed in batches of ``LOAD_BATCH`` on the event loop and COPYed in, so
        a generator streaming a big file is never materialised; if it raises, nothing is
        written. Log rows wait in a temporary table and take their serials at the end, so the
        serial counter (and with it every other writer's commit) is held only for the final
        insert, not for the whole load. One NOTIFY announces the last serial.
        """

        async def tx(conn: asyncpg.Connection) -> int:
            loaded = 0
            for batch in _batches(records, LOAD_BATCH):
                if not loaded:
                    await conn.execute(self._sql.load_log_create)
                loaded = await self._load_batch(conn, batch, overwrite, loaded)
            return await self._finish_load(conn, loaded)

        return await self._write(tx, effects=effects)

    async def _finish_load(self, conn: asyncpg.Connection, loaded: int) -> int:
        """A load's end: its ``loaded`` log rows take their serials (held only now), one
        NOTIFY announces the last; the serial as it stands when nothing was loaded."""
        if not loaded:
            return await conn.fetchval(self._sql.serial)
        last = await conn.fetchval(self._sql.take_serials, loaded)
        await conn.execute(self._sql.load_log_flush, last - loaded)
        await conn.execute(self._sql.notify, self.channel, last)
        return last

    async def load_rows(
        self,
        groups: Iterable[RowGroup],
        *,
        overwrite: bool = False,
        effects: Effects = NO_EFFECTS,
    ) -> int:
        """``load`` of row groups, each layout checked and encoded once (bulk import's path).

        Why: the generic path built a ``HandleValue`` per value and encoded each record's
        answer from scratch, about 120 us a record in Python (docs/performance.md). Here a
        record costs its key, its data and one row tuple per value; the same COPY rounds,
        checks, errors and log rows as ``load``.
        """

        async def tx(conn: asyncpg.Connection) -> int:
            loaded = 0
            for group in groups:
                group = check_row_group(group)
                layout = group.layout
                for v in layout:
                    if "\x00" in v.type:
                        raise InvalidValue(f"value {v.index}: type must not contain NUL")
                for chunk in _batches(group.rows, LOAD_BATCH):
                    if not loaded:
                        await conn.execute(self._sql.load_log_create)
                    loaded = await self._load_row_batch(conn, layout, chunk, overwrite, loaded)
            return await self._finish_load(conn, loaded)

        return await self._write(tx, effects=effects)

    async def _load_row_batch(
        self,
        conn: asyncpg.Connection,
        layout: tuple[HandleValue, ...],
        rows: list[tuple[str, Sequence[bytes]]],
        overwrite: bool,
        done: int,
    ) -> int:
        """``_load_batch`` of rows of one layout; returns the records loaded so far."""
        now = int(self._clock())
        log_rows = []
        final: dict[str, tuple[str, tuple[bytes, ...]]] = {}  # key -> last record in batch
        for handle, datas in rows:
            handle, datas = check_row(handle, datas, layout)
            if "\x00" in handle:
                raise InvalidHandle("a handle must not contain NUL")
            key = handle_key(handle)
            if key in final:
                if not overwrite:
                    raise HandleAlreadyExists(f"handle {handle} already exists")
                del final[key]  # re-inserted: the dict keeps the order of last occurrence
            final[key] = (handle, datas)
            done += 1
            log_rows.append((done, now, handle))
        keys = list(final)
        await self._clear_for_load(conn, keys, final, overwrite)
        s = self.schema
        prefixes: dict[str, str | None] = {}
        handle_rows = []
        for key, (handle, _) in final.items():
            name = handle.partition("/")[0]
            if name not in prefixes:
                prefixes[name] = prefix_key(handle)
            handle_rows.append((key, handle, prefixes[name]))
        await conn.copy_records_to_table("handles", schema_name=s, records=handle_rows)
        value_rows, answer_rows = [], []
        if layout:
            slots = [_fields(v) for v in layout]  # data (the third field) comes from each row
            value_rows = [
                (k, f[0], f[1], d, f[3], f[4], f[5], f[6], f[7])
                for k, (_, datas) in final.items()
                for f, d in zip(slots, datas, strict=True)
            ]
        if self._answers is not None:
            encode = layout_answers(self._answers, layout)
            answer_rows = [
                (k, *_answer_fields(encode(datas) or NOT_SERVED)) for k, (_, datas) in final.items()
            ]
        else:
            await conn.execute(self._sql.answers_unfilled)
        await self._copy_children(conn, value_rows, answer_rows)
        await conn.copy_records_to_table("idnode_load_log", records=log_rows)
        return done

    async def _copy_children(
        self,
        conn: asyncpg.Connection,
        value_rows: list[tuple[Any, ...]],
        answer_rows: list[tuple[Any, ...]],
    ) -> None:
        """COPY a load's value and answer rows, whose handles it has just inserted.

        Their foreign keys cannot fail (each parent row is this transaction's own, one
        statement earlier), yet PostgreSQL checks each child row with a trigger that looks
        the parent up and key-share locks it: 32 of a record's ~60 us of server time for
        eight values (docs/performance.md). When the role may (a superuser, or ``GRANT SET
        ON PARAMETER session_replication_role``), the load turns row triggers off for these
        two COPYs only, as ``pg_restore --disable-triggers`` does, and on again before
        anything else: deletes still cascade, and the mirrors' capture triggers on the
        governance tables still fire in the same transaction.
        """
        if not value_rows and not answer_rows:
            return
        unchecked = await self._skip_row_triggers(conn)
        s = self.schema
        if value_rows:
            await conn.copy_records_to_table("handle_values", schema_name=s, records=value_rows)
        if answer_rows:
            await conn.copy_records_to_table("public_answers", schema_name=s, records=answer_rows)
        if unchecked:
            await conn.execute("SET LOCAL session_replication_role = origin")

    async def _skip_row_triggers(self, conn: asyncpg.Connection) -> bool:
        """Turn row triggers off until told otherwise in this transaction, if the role
        may; whether they were (see ``_copy_children``)."""
        if not self._may_skip_triggers:
            return False
        if await conn.fetchval("SELECT current_setting('session_replication_role')") != "origin":
            return False  # (a server set up otherwise: leave it as it is)
        try:
            async with conn.transaction():  # a savepoint: a refused SET must not end the load
                await conn.execute("SET LOCAL session_replication_role = replica")
        except asyncpg.exceptions.InsufficientPrivilegeError:
            self._may_skip_triggers = False
            return False
        return True

    async def _clear_for_load(
        self, conn: asyncpg.Connection, keys: list[str], final: dict[str, Any], overwrite: bool
    ) -> None:
        """An overwrite deletes the records it replaces; a load refuses any that exist."""
        if overwrite:
            await conn.execute(self._sql.delete_handles, keys)
            return
        existing = dict(await conn.fetch(self._sql.existing, keys))
        if existing:
            first = next(h for k, (h, _) in final.items() if k in existing)
            raise HandleAlreadyExists(f"handle {first} already exists")

    async def _load_batch(
        self,
        conn: asyncpg.Connection,
        batch: list[tuple[str, Sequence[HandleValue]]],
        overwrite: bool,
        done: int,
    ) -> int:
        """Write one batch; return the number of records loaded so far."""
        log_rows = []
        final: dict[str, tuple[str, list[HandleValue]]] = {}  # key -> last record in batch
        for handle, values in batch:
            handle = _check_name(handle)
            checked = _check_values(values)
            key = handle_key(handle)
            if key in final and not overwrite:
                raise HandleAlreadyExists(f"handle {handle} already exists")
            final.pop(key, None)  # re-insert so the dict keeps the order of last occurrence
            final[key] = (handle, checked)
            done += 1
            log_rows.append((done, int(self._clock()), handle))
        keys = list(final)
        if overwrite:
            await conn.execute(self._sql.delete_handles, keys)
        else:
            existing = dict(await conn.fetch(self._sql.existing, keys))
            if existing:
                first = next(h for k, (h, _) in final.items() if k in existing)
                raise HandleAlreadyExists(f"handle {first} already exists")
        await conn.copy_records_to_table(
            "handles",
            schema_name=self.schema,
            records=[(k, h, prefix_key(h)) for k, (h, _) in final.items()],
        )
        value_rows = [(k, *_fields(v)) for k, (_, vs) in final.items() for v in vs]
        answer_rows = []
        if self._answers is not None:  # (an overwrite's DELETE above cascaded to the old ones)
            encode = self._answers
            answers = ((k, encode(vs) or NOT_SERVED) for k, (_, vs) in final.items())
            answer_rows = [(k, *_answer_fields(a)) for k, a in answers]
        else:
            await conn.execute(self._sql.answers_unfilled)
        await self._copy_children(conn, value_rows, answer_rows)
        await conn.copy_records_to_table("idnode_load_log", records=log_rows)
        return done


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook: nothing to undo, so skip asyncpg's default reset query.

    The default (``RESET ALL; UNLISTEN *; CLOSE ALL; ...``) costs one round trip per release,
    doubling the latency of a point read. This store leaves no session state on pooled
    connections: no SET, no LISTEN (the listener has its own connection), only
    transaction-scoped locks and temp tables. asyncpg still rolls back a transaction left
    open (say, by a cancelled call) before calling this.
    """


# -- helpers --------------------------------------------------------------------------------------
class _SourceFailed(Exception):
    """Carries an exception raised by the caller's records iterable through ``_write``."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(str(original))
        self.original = original


def _batches(records: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(records)
    while True:
        batch: list[T] = []
        try:
            for _ in range(size):
                batch.append(next(it))
        except StopIteration:
            pass
        except Exception as exc:  # not ours: hand it back unchanged, after the rollback
            raise _SourceFailed(exc) from exc
        if not batch:
            return
        yield batch
        if len(batch) < size:
            return


def _check_name(handle: object) -> str:
    """``check_handle_name``, plus: PostgreSQL text cannot hold NUL."""
    name = check_handle_name(handle)
    if "\x00" in name:
        raise InvalidHandle("a handle must not contain NUL")
    return name


def _check_values(values: Iterable[HandleValue], *, allow_empty: bool = True) -> list[HandleValue]:
    checked = check_values(values, allow_empty=allow_empty)
    for v in checked:
        if "\x00" in v.type:
            raise InvalidValue(f"value {v.index}: type must not contain NUL")
    return checked


def _answer_fields(answer: PublicAnswer) -> tuple[bytes, bytes, bool]:
    return (answer.wire, answer.json, answer.restricted)


def _fields(v: HandleValue) -> tuple[Any, ...]:
    return (
        v.index, v.type, bytes(v.data), int(v.permissions), int(v.ttl_type), v.ttl, v.timestamp,
        encode_refs(v.references),
    )  # fmt: skip


def _columns(values: list[HandleValue]) -> list[list[Any]]:
    """Values as one list per column, for the ``unnest($2, ..., $9)`` statements."""
    return [list(column) for column in zip(*(_fields(v) for v in values), strict=True)]


def _require_all(spelled: str, indexes: list[int], rows: list[asyncpg.Record]) -> None:
    missing = sorted(set(indexes) - {r[0] for r in rows})
    if missing:  # rows already changed are rolled back with the transaction
        raise ValueNotFound(f"handle {spelled} has no value at index {missing[0]}")


def _translate(exc: BaseException, doing: str = "") -> IdnodeError:
    """Engine errors leave the store as ``idnode.errors``: ServerBusy when retrying later may
    work (no connection, pool exhausted, serialization failure, deadlock, shutdown), a
    constraint's own error for a race the pre-checks could not see, IdnodeError otherwise."""
    where = f"postgres store: {doing}: " if doing else "postgres store: "
    if isinstance(exc, TimeoutError):
        return ServerBusy(f"{where}timed out (no free connection or no answer)")
    if isinstance(exc, OSError | asyncpg.exceptions.InternalClientError):
        return ServerBusy(f"{where}connection lost: {exc}")
    state = getattr(exc, "sqlstate", None) or ""
    if state[:2] in _BUSY_CLASSES or state in _BUSY_STATES:
        return ServerBusy(f"{where}busy ({state}): {exc}")
    error = _CONSTRAINT_ERRORS.get(getattr(exc, "constraint_name", None) or "")
    if error is not None and state.startswith("23"):
        return error(f"{where}{error.__doc__} (concurrent write)")
    return IdnodeError(f"{where}{type(exc).__name__}: {exc}")


class _PgAtomic:
    """``Store.atomic`` on one pooled connection inside its transaction."""

    def __init__(self, store: PostgresStore, conn: asyncpg.Connection, serial: int) -> None:
        self._store, self._conn, self.serial = store, conn, serial

    def _sql(self, sql: str) -> str:
        return for_postgres(sql, self._store.schema)

    async def execute(self, sql: str, *args: Any) -> int:
        return _touched(await self._conn.execute(self._sql(sql), *args))

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._conn.fetch(self._sql(sql), *args)]

    async def fetchrow(self, sql: str, *args: Any) -> dict[str, Any] | None:
        row = await self._conn.fetchrow(self._sql(sql), *args)
        return None if row is None else dict(row)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchval(self._sql(sql), *args)

    async def apply(self, effects: Effects) -> None:
        await self._store._apply(self._conn, effects, self.serial)


async def run_steps(conn: asyncpg.Connection, steps, schema: str) -> None:
    """Drive a sans-I/O statement generator (``governance.apply_effects``) on ``conn``."""
    try:
        op: Op = next(steps)
        while True:
            sql = for_postgres(op.sql, schema)
            if op.kind == "execute":
                result: Any = _touched(await conn.execute(sql, *op.args))
            else:
                row = await conn.fetchrow(sql, *op.args)
                result = None if row is None else tuple(row)
            op = steps.send(result)
    except StopIteration:
        pass


def _touched(status: str) -> int:
    """Rows a statement touched, from its status tag (``UPDATE 1``, ``INSERT 0 3``)."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
