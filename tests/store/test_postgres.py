"""What only the PostgreSQL engine promises: migrations, its own schema, NOTIFY of serials,
pool limits, error mapping, and failed writes leaving every table exactly as it was."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

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
from idnode.model import HandleValue, handle_key
from idnode.runtime import ManualClock
from idnode.store import postgres_schema
from idnode.store.base import RowGroup
from idnode.store.effects import Effects, Statement
from idnode.store.governance import (
    QUOTA_TABLES,
    RECURSIVE_CACHE_TABLES,
    SESSION_TABLES,
    TEMPLATE_SUPERVISION_TABLES,
)
from idnode.store.governance import TABLES as GOVERNANCE_TABLES
from idnode.store.postgres import PostgresStore, _translate
from idnode.store.postgres_schema import SCHEMA_VERSION
from idnode.wire.public_answer import ENCODER
from tests.store.conftest import PG_DSN, drop_pg_schema, pg_connect, pg_schema_for

P = "20.500.1"
TABLES = (
    "handles", "handle_values", "homed_prefixes", "txlog", "serial_counter", "public_answers",
    "public_answers_fill",
)  # fmt: skip


def v(index: int, data: bytes = b"x") -> HandleValue:
    return HandleValue(index, "URL", data, timestamp=1_700_000_000)


@pytest.fixture
async def schema(tmp_path: Path) -> AsyncIterator[str]:
    await drop_pg_schema(tmp_path)  # also fails clearly when the server is down
    try:
        yield pg_schema_for(tmp_path)
    finally:
        await drop_pg_schema(tmp_path)


@pytest.fixture
async def conn() -> AsyncIterator[asyncpg.Connection]:
    c = await pg_connect()
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def db(schema: str) -> AsyncIterator[PostgresStore]:
    async with PostgresStore(PG_DSN, schema=schema, max_size=4, clock=ManualClock()) as store:
        yield store


async def dump(conn: asyncpg.Connection, schema: str) -> dict[str, list[tuple]]:
    """Every row of every table, in a fixed order."""
    order = {"public_answers_fill": "1"}  # (one column)
    return {
        t: [
            tuple(r)
            for r in await conn.fetch(f"SELECT * FROM {schema}.{t} ORDER BY {order.get(t, '1, 2')}")
        ]
        for t in TABLES
    }


# -- schema and migrations ----------------------------------------------------------------------
async def test_tables_live_in_the_schema_with_byte_order_keys(db, conn, schema) -> None:
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", schema
    )
    governance = {re.search(r"CREATE TABLE \{s\}\.(\w+)", t)[1]
                  for t in (*GOVERNANCE_TABLES, *QUOTA_TABLES, *RECURSIVE_CACHE_TABLES,
                            *TEMPLATE_SUPERVISION_TABLES, *SESSION_TABLES)
                  if t.startswith("CREATE TABLE")}  # fmt: skip
    assert {r[0] for r in rows} == {*TABLES, *governance, "schema_version", "repl_changes"}
    versions = await conn.fetch(f"SELECT version FROM {schema}.schema_version")
    assert [r[0] for r in versions] == list(range(1, SCHEMA_VERSION + 1))
    collations = await conn.fetch(
        "SELECT table_name, column_name, collation_name FROM information_schema.columns"
        " WHERE table_schema = $1 AND collation_name IS NOT NULL ORDER BY 1, 2",
        schema,
    )
    # ORDER BY key sorts as SQLite's BINARY does, in every table
    assert {r[2] for r in collations} == {"C"}
    keyed = {(r[0], r[1]) for r in collations}
    assert {("handle_values", "key"), ("handles", "key"), ("handles", "prefix"),
            ("homed_prefixes", "key"), ("versions", "key")} <= keyed  # fmt: skip


async def test_reopen_does_not_migrate_again(db, conn, schema) -> None:
    before = await conn.fetch(f"SELECT * FROM {schema}.schema_version")
    async with PostgresStore(PG_DSN, schema=schema, clock=ManualClock()) as again:
        assert await again.serial() == 0
    assert await conn.fetch(f"SELECT * FROM {schema}.schema_version") == before


async def test_concurrent_first_opens_migrate_once(schema, conn) -> None:
    stores = [PostgresStore(PG_DSN, schema=schema, clock=ManualClock()) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        rows = await conn.fetch(f"SELECT version FROM {schema}.schema_version")
        assert sorted(r[0] for r in rows) == list(range(1, SCHEMA_VERSION + 1))
        serials = await asyncio.gather(
            *(s.create_handle(f"{P}/o{i}", [v(1)]) for i, s in enumerate(stores))
        )
        assert sorted(serials) == [1, 2, 3, 4]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_newer_schema_is_refused(db, conn, schema) -> None:
    await conn.execute(f"INSERT INTO {schema}.schema_version (version) VALUES (999)")
    newer = PostgresStore(PG_DSN, schema=schema, clock=ManualClock())
    with pytest.raises(IdnodeError, match="newer than this idnode"):
        await newer.open()
    with pytest.raises(RuntimeError, match="not open"):
        await newer.serial()


async def test_failed_migration_step_rolls_back_whole(schema, conn, monkeypatch) -> None:
    async with PostgresStore(PG_DSN, schema=schema, clock=ManualClock()) as s:
        await s.create_handle(f"{P}/kept", [v(1)])
    broken = ("CREATE TABLE {s}.extra (x int)", "SELECT no_such_function()")
    monkeypatch.setattr(postgres_schema, "MIGRATIONS", (*postgres_schema.MIGRATIONS, broken))
    monkeypatch.setattr(postgres_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(IdnodeError) as info:
        await PostgresStore(PG_DSN, schema=schema, clock=ManualClock()).open()
    assert not isinstance(info.value, ServerBusy)
    version = await conn.fetchval(f"SELECT max(version) FROM {schema}.schema_version")
    assert version == SCHEMA_VERSION
    assert await conn.fetchval("SELECT to_regclass($1)", f"{schema}.extra") is None
    monkeypatch.undo()
    async with PostgresStore(PG_DSN, schema=schema, clock=ManualClock()) as s:
        assert await s.get_handle(f"{P}/KEPT") == [v(1)]


def test_schema_names_are_checked() -> None:
    for bad in ("", "Upper", "a-b", "x;drop", "pg_x", "1abc", "a" * 51):
        with pytest.raises(ValueError):
            PostgresStore(PG_DSN, schema=bad, clock=ManualClock())


def test_from_url_takes_out_our_parameters() -> None:
    s = PostgresStore.from_url(
        "postgresql://u@h:5433/db?schema=reg&pool_max=20&sslmode=disable&pool_min=2",
        clock=ManualClock(),
    )
    assert (s.schema, s.channel, s._sizes) == ("reg", "reg_serial", (2, 20))
    assert s.dsn == "postgresql://u@h:5433/db?sslmode=disable"
    assert (
        PostgresStore.from_url("postgresql://u@h/db", clock=ManualClock()).channel
        == "idnode_serial"
    )


# -- NOTIFY / subscribe --------------------------------------------------------------------------
async def wait_for(seen: list[int], want: int, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not seen or seen[-1] < want:
            await asyncio.sleep(0.01)


async def test_subscribe_gets_serials_committed_by_another_instance(db, schema) -> None:
    seen: list[int] = []
    await db.subscribe(seen.append)
    async with PostgresStore(
        PG_DSN, schema=schema, clock=ManualClock()
    ) as other:  # as another process would
        await other.create_handle(f"{P}/a", [v(1)])
        await other.add_values(f"{P}/a", [v(2)])
        with pytest.raises(HandleAlreadyExists):  # a failed write announces nothing
            await other.create_handle(f"{P}/A", [v(1)])
        await other.load([(f"{P}/l{i}", [v(1)]) for i in range(10)])  # one notice: last serial
        await other.delete_handle(f"{P}/l3")
        await wait_for(seen, 13)
    assert seen == [1, 2, 12, 13]
    assert await db.get_handle(f"{P}/l4") == [v(1)]  # and the data is there when notified


async def test_other_schemas_do_not_notify(db, tmp_path) -> None:
    seen: list[int] = []
    await db.subscribe(seen.append)
    other_place = tmp_path / "other"
    await drop_pg_schema(other_place)
    try:
        async with PostgresStore(
            PG_DSN, schema=pg_schema_for(other_place), clock=ManualClock()
        ) as other:
            await other.create_handle(f"{P}/x", [v(1)])
        await db.create_handle(f"{P}/mine", [v(1)])
        await wait_for(seen, 1)
        await asyncio.sleep(0.1)
        assert seen == [1]
    finally:
        await drop_pg_schema(other_place)


async def test_listener_reconnects_and_reports_current_serial(db, conn) -> None:
    seen: list[int] = []
    await db.subscribe(seen.append)
    assert db._listener is not None
    db._listener._retry = (0.05, 0.05)
    pid = db._listener.backend_pid
    await conn.execute("SELECT pg_terminate_backend($1)", pid)
    await db.create_handle(f"{P}/while-down", [v(1)])  # its notice may be lost
    await wait_for(seen, 1)
    async with asyncio.timeout(5):
        while db._listener.backend_pid in (None, pid):
            await asyncio.sleep(0.01)
    await db.create_handle(f"{P}/after", [v(1)])
    await wait_for(seen, 2)
    assert seen[-1] == 2


async def test_a_raising_callback_does_not_stop_others(db) -> None:
    seen: list[int] = []

    def broken(serial: int) -> None:
        raise RuntimeError("subscriber bug")

    await db.subscribe(broken)
    await db.subscribe(seen.append)
    await db.create_handle(f"{P}/x", [v(1)])
    await db.create_handle(f"{P}/y", [v(1)])
    await wait_for(seen, 2)
    assert seen == [1, 2]


# -- pool and connection failures ----------------------------------------------------------------
async def test_exhausted_pool_answers_busy_then_recovers(schema) -> None:
    async with PostgresStore(
        PG_DSN, schema=schema, max_size=1, acquire_timeout=0.2, clock=ManualClock()
    ) as s:
        assert s._pool is not None
        held = await s._pool.acquire()
        try:
            with pytest.raises(ServerBusy):
                await s.get_handle(f"{P}/x")
            with pytest.raises(ServerBusy):
                await s.create_handle(f"{P}/x", [v(1)])
        finally:
            await s._pool.release(held)
        assert await s.create_handle(f"{P}/x", [v(1)]) == 1  # the busy write left no gap


async def test_killed_connection_is_busy_then_replaced(schema, conn) -> None:
    async with PostgresStore(PG_DSN, schema=schema, max_size=1, clock=ManualClock()) as s:
        await s.create_handle(f"{P}/x", [v(1)])
        pid = await s._read(lambda c: c.fetchval("SELECT pg_backend_pid()"))  # the only one
        killed = await conn.fetchval("SELECT pg_terminate_backend($1)::int", pid)
        assert killed == 1
        results = []
        for _ in range(3):  # the first call may still meet the dead connection
            try:
                results.append(await s.get_handle(f"{P}/x"))
            except ServerBusy:
                results.append("busy")
        assert results[-1] == [v(1)]


async def test_unreachable_server_is_busy(tmp_path) -> None:
    s = PostgresStore(
        "postgresql://postgres@127.0.0.1:1/test", connect_timeout=2, clock=ManualClock()
    )
    with pytest.raises(ServerBusy, match="cannot connect"):
        await s.open()


def test_engine_errors_are_translated() -> None:
    busy = [
        asyncpg.exceptions.SerializationError("s"),
        asyncpg.exceptions.DeadlockDetectedError("d"),
        asyncpg.exceptions.TooManyConnectionsError("t"),
        asyncpg.exceptions.AdminShutdownError("a"),
        asyncpg.exceptions.QueryCanceledError("q"),
        asyncpg.exceptions.LockNotAvailableError("l"),
        asyncpg.exceptions.ConnectionDoesNotExistError("c"),
        asyncpg.exceptions.InternalClientError("cannot switch to state 11"),
        ConnectionResetError("r"),
        TimeoutError(),
    ]
    for exc in busy:
        assert type(_translate(exc)) is ServerBusy, exc
    for exc in (asyncpg.exceptions.UndefinedTableError("u"), asyncpg.InterfaceError("i")):
        assert type(_translate(exc)) is IdnodeError


# -- failed writes leave every table exactly as it was ------------------------------------------
class _Boom(Exception):
    pass


def _then_boom(records):
    yield from records
    raise _Boom("the source broke")


async def test_failed_writes_leave_tables_unchanged(db, conn, schema) -> None:
    await db.create_handle(f"{P}/a", [v(1), v(2)])
    await db.home_prefix(P)
    await db.load([(f"{P}/l{i}", [v(1)]) for i in range(5)])
    before = await dump(conn, schema)

    big = [(f"{P}/big{i}", [v(1, b"y" * 200)]) for i in range(12_000)]  # several COPY batches
    failures = [
        (lambda: db.create_handle(f"{P}/A", [v(1)]), HandleAlreadyExists),
        (lambda: db.create_handle(f"{P}/n\x00ul", [v(1)]), InvalidHandle),
        (lambda: db.create_handle(f"{P}/n", [HandleValue(1, "U\x00RL", b"")]), InvalidValue),
        (lambda: db.add_values(f"{P}/a", [v(3), v(2)]), ValueAlreadyExists),
        (lambda: db.modify_values(f"{P}/a", [v(1, b"new"), v(9)]), ValueNotFound),
        (lambda: db.remove_values(f"{P}/a", [1, 9]), ValueNotFound),
        (lambda: db.delete_handle(f"{P}/none"), HandleNotFound),
        # big loads failing in their last batch, after earlier batches were COPYed in
        (lambda: db.load([*big, (f"{P}/L3", [v(1)])]), HandleAlreadyExists),
        (lambda: db.load([*big, (f"{P}/bad", [v(1), v(1)])]), InvalidValue),
        (lambda: db.load([*big, (f"{P}/big7", [v(1)])]), HandleAlreadyExists),
        (lambda: db.load(_then_boom([(f"{P}/a", []), *big]), overwrite=True), _Boom),
    ]
    for op, error in failures:
        with pytest.raises(error):
            await op()
        assert await dump(conn, schema) == before, error
    assert await db.create_handle(f"{P}/after", [v(1)]) == before["txlog"][-1][0] + 1


async def test_nul_is_refused_on_write_and_absent_on_read(db) -> None:
    with pytest.raises(InvalidHandle):
        await db.home_prefix("20.500\x00")
    assert await db.get_handle(f"{P}/a\x00") is None
    assert await db.list_handles("20\x00") == [] and await db.count_handles("20\x00") == 0


async def test_load_overwrite_across_batches_and_repeats(db, conn, schema) -> None:
    await db.create_handle(f"{P}/big1", [v(9)])
    records = [(f"{P}/big{i}", [v(1, str(i).encode())]) for i in range(6_000)]
    records.append((f"{P}/BIG1", [v(2)]))  # repeats big1 in a later batch: the last one wins
    last = await db.load(records, overwrite=True)
    assert last == 1 + len(records) == await db.serial()
    assert await db.get_handle(f"{P}/big1") == [v(2)]
    assert await db.list_handles(P, offset=0, limit=1) == [f"{P}/big0"]
    assert await db.count_handles(P) == 6_000
    txs = await db.transactions(last - 1)
    assert [(t.action, t.handle) for t in txs] == [("load", f"{P}/BIG1")]


LAYOUT = (HandleValue(1, "URL", b"", timestamp=1_700_000_000),
          HandleValue(2, "EMAIL", b"", timestamp=1_700_000_000))  # fmt: skip


async def _load_both_ways(store: PostgresStore) -> None:
    """Forty records by ``load_rows`` (bulk import's path, with a captured governance row in
    its transaction) and twenty by ``load``."""
    rows = [(f"{P}/r{i}", (f"u{i}".encode(), f"e{i}".encode())) for i in range(40)]
    meta = Statement("INSERT INTO {s}.meta (key, value) VALUES (?, ?)", ("bulk-test", "1"))
    await store.load_rows([RowGroup(LAYOUT, rows)], effects=Effects(statements=(meta,)))
    await store.load([(f"{P}/l{i}", [v(1), v(2, b"y")]) for i in range(20)])


async def _key_share_locked(conn: asyncpg.Connection, schema: str) -> int:
    """Handle rows that a foreign-key check has key-share locked (their xmax set)."""
    return await conn.fetchval(f"SELECT count(*) FROM {schema}.handles WHERE xmax <> 0")


async def test_a_bulk_load_checks_no_reference_row_by_row(schema, conn) -> None:
    """A load's value and answer rows reference handles it inserted one statement before:
    the per-row foreign-key triggers (a parent lookup and a key-share lock each, half of the
    load's server time) are skipped when the role may turn row triggers off. Deletes still
    cascade, and the mirrors' capture trigger still fires in the load's transaction."""
    async with PostgresStore(PG_DSN, schema=schema, clock=ManualClock(), answers=ENCODER) as db:
        await _load_both_ways(db)
        assert await _key_share_locked(conn, schema) == 0
        assert await db.get_handle(f"{P}/r7") == [replace(LAYOUT[0], data=b"u7"),
                                                  replace(LAYOUT[1], data=b"e7")]  # fmt: skip
        assert (await db.public_answer(f"{P}/l3")) is not None
        captured = f"SELECT count(*) FROM {schema}.repl_changes WHERE tbl = 'meta'"
        assert await conn.fetchval(captured) >= 1
        await db.delete_handle(f"{P}/r7")
        for table in ("handle_values", "public_answers"):
            left = f"SELECT count(*) FROM {schema}.{table} WHERE key = $1"
            assert await conn.fetchval(left, handle_key(f"{P}/r7")) == 0
        setting = "SELECT current_setting('session_replication_role')"
        async with db._pool.acquire() as pooled:  # no connection keeps the triggers off
            assert await pooled.fetchval(setting) == "origin"


async def test_a_role_that_may_not_turn_triggers_off_loads_with_the_checks(schema, conn) -> None:
    async with PostgresStore(PG_DSN, schema=schema, clock=ManualClock()):
        pass  # the schema, made by its owner
    role = "idnode_test_plain"
    await conn.execute(
        f"DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    )
    await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
    await conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {role}")
    await conn.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
    parts = urlsplit(PG_DSN)
    dsn = urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rpartition('@')[2]}"))
    async with PostgresStore(dsn, schema=schema, clock=ManualClock(), answers=ENCODER) as plain:
        await _load_both_ways(plain)
        assert await _key_share_locked(conn, schema) == 60  # checked, row by row
        assert await plain.count_handles(P) == 60
        assert await plain.get_handle(f"{P}/l3") == [v(1), v(2, b"y")]


async def test_the_mirrors_capture_runs_once_a_statement(db, conn, schema) -> None:
    """Each changed row of a captured table is recorded once with its key, ``replication.*``
    meta keys left out, as the row triggers recorded them; but by one trigger a statement
    over its transition table (a row trigger cost 4.5 us a row of bulk import's multi-row
    INSERTs)."""
    row_triggers = await conn.fetchval(
        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = $1 AND NOT t.tgisinternal AND t.tgtype & 1 = 1",
        schema,
    )
    assert row_triggers == 0
    start = await conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {schema}.repl_changes")
    day = "2026-12-07"
    statements = (
        Statement("INSERT INTO {s}.meta (key, value) VALUES (?, ?), (?, ?), (?, ?)",
                  ("a", "1", "replication.pos", "2", "b", "3")),
        Statement("UPDATE {s}.meta SET value = ? WHERE key IN (?, ?)",
                  ("9", "a", "replication.pos")),
        Statement("INSERT INTO {s}.meta (key, value) VALUES (?, ?), (?, ?)"
                  " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                  ("b", "4", "c", "5")),
        Statement("INSERT INTO {s}.stats_daily (day, prefix, registrations, resolutions)"
                  " VALUES (?, ?, 1, 0), (?, ?, 2, 0)", (day, "20.500.1", day, "20.500.2")),
        Statement("DELETE FROM {s}.meta WHERE key IN (?, ?)", ("b", "replication.pos")),
        Statement("UPDATE {s}.meta SET value = ? WHERE key = ?", ("x", "none")),
    )  # fmt: skip
    await db.apply(Effects(statements=statements))
    changes = await conn.fetch(
        f"SELECT tbl, pk FROM {schema}.repl_changes WHERE id > $1 ORDER BY id", start
    )
    assert [tuple(r) for r in changes] == [
        ("meta", '["a"]'),
        ("meta", '["b"]'),
        ("meta", '["a"]'),
        ("meta", '["b"]'),  # the upsert: b updated, c inserted (as the row triggers had it)
        ("meta", '["c"]'),
        ("stats_daily", f'["{day}", "20.500.1"]'),
        ("stats_daily", f'["{day}", "20.500.2"]'),
        ("meta", '["b"]'),
    ]


async def test_serials_gap_free_with_failures_mixed_in(db) -> None:
    ops = []
    for i in range(40):
        ops.append(db.create_handle(f"{P}/g{i % 20}", [v(1)]))  # every second one collides
    results = await asyncio.gather(*ops, return_exceptions=True)
    serials = sorted(r for r in results if isinstance(r, int))
    assert serials == list(range(1, 21))
    assert all(isinstance(r, HandleAlreadyExists) for r in results if not isinstance(r, int))
    assert [t.serial for t in await db.transactions()] == serials


async def test_writes_by_one_instance_are_read_by_another(db, schema) -> None:
    async with PostgresStore(PG_DSN, schema=schema, clock=ManualClock()) as other:
        await db.create_handle(f"{P}/shared", [v(1)])
        assert await other.get_handle(f"{P}/SHARED") == [v(1)]
        assert await other.serial() == 1
