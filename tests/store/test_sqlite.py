"""What only the SQLite engine promises: its pragmas, its file, its schema migrations."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from idnode.errors import HandleAlreadyExists, IdnodeError, InvalidValue, ServerBusy
from idnode.model import HandleValue
from idnode.runtime import ManualClock
from idnode.store import open_store
from idnode.store import sqlite as engine
from idnode.store.base import RowGroup
from idnode.store.sqlite import SCHEMA_VERSION, SQLiteStore
from idnode.wire.public_answer import ENCODER


def v(index: int, data: bytes = b"x") -> HandleValue:
    return HandleValue(index, "URL", data, timestamp=1_700_000_000)


def checkpointed_bytes(path: Path) -> tuple[bytes, list[str]]:
    """The main file after folding the WAL into it, plus a logical dump of every row."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        dump = list(conn.iterdump())
    finally:
        conn.close()
    return path.read_bytes(), dump


@pytest.fixture
async def db(tmp_path: Path):
    store = SQLiteStore(str(tmp_path / "node.db"), clock=ManualClock())
    async with store:
        yield store


async def test_pragmas_and_schema_version(db: SQLiteStore) -> None:
    conn = db._wconn
    assert conn is not None
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db._rconn is not None
    assert db._rconn.execute("PRAGMA query_only").fetchone()[0] == 1


async def test_failed_writes_leave_file_bytes_unchanged(db: SQLiteStore) -> None:
    path = Path(db.path)
    await db.create_handle("20.500.1/a", [v(1), v(2)])
    await db.home_prefix("20.500.1")
    before = checkpointed_bytes(path)

    with pytest.raises(HandleAlreadyExists):
        await db.create_handle("20.500.1/A", [v(1)])
    # a big load failing at the very end: enough rows that SQLite spills pages to the WAL
    big = [(f"20.500.1/big{i}", [v(1, b"y" * 2000)]) for i in range(3000)]
    with pytest.raises(InvalidValue):
        await db.load([*big, ("20.500.1/bad", [v(1), v(1)])])
    assert checkpointed_bytes(path) == before


async def test_values_are_plain_rows(db: SQLiteStore) -> None:
    """Other tools (and later migrations) can query values by type with plain SQL."""
    await db.create_handle("20.500.1/a", [v(1), HandleValue(2, "EMAIL", b"e")])
    conn = sqlite3.connect(db.path)
    rows = conn.execute("SELECT key, idx, type FROM handle_values ORDER BY idx").fetchall()
    conn.close()
    assert rows == [("20.500.1/A", 1, "URL"), ("20.500.1/A", 2, "EMAIL")]


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(IdnodeError, match="newer"):
        await SQLiteStore(str(path), clock=ManualClock()).open()


async def test_appended_migration_upgrades_existing_file(tmp_path, monkeypatch) -> None:
    path = str(tmp_path / "node.db")
    async with SQLiteStore(path, clock=ManualClock()) as s:
        await s.create_handle("20.500.1/kept", [v(1)])
    step = ("CREATE TABLE extra (x INTEGER)", "INSERT INTO extra VALUES (42)")
    monkeypatch.setattr(engine, "MIGRATIONS", (*engine.MIGRATIONS, step))
    monkeypatch.setattr(engine, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    async with SQLiteStore(path, clock=ManualClock()) as s:
        assert await s.get_handle("20.500.1/kept") == [v(1)]
        assert s._wconn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        assert s._wconn.execute("SELECT x FROM extra").fetchall() == [(42,)]


async def test_failing_migration_changes_nothing(tmp_path, monkeypatch) -> None:
    path = str(tmp_path / "node.db")
    async with SQLiteStore(path, clock=ManualClock()) as s:
        await s.create_handle("20.500.1/kept", [v(1)])
    before = checkpointed_bytes(Path(path))
    step = ("CREATE TABLE extra (x INTEGER)", "INSERT INTO no_such_table VALUES (1)")
    monkeypatch.setattr(engine, "MIGRATIONS", (*engine.MIGRATIONS, step))
    monkeypatch.setattr(engine, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(IdnodeError, match="no_such_table"):
        await SQLiteStore(path, clock=ManualClock()).open()
    assert checkpointed_bytes(Path(path)) == before


async def test_write_lock_held_elsewhere_is_server_busy(tmp_path: Path) -> None:
    path = tmp_path / "node.db"
    async with SQLiteStore(str(path), busy_timeout=0.05, clock=ManualClock()) as s:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(ServerBusy):
                await s.create_handle("20.500.1/a", [v(1)])
            assert await s.get_handle("20.500.1/a") is None  # reads are not blocked
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await s.create_handle("20.500.1/a", [v(1)]) == 1


async def test_sees_writes_of_another_process(tmp_path: Path) -> None:
    path = str(tmp_path / "node.db")
    async with (
        SQLiteStore(path, clock=ManualClock()) as server,
        SQLiteStore(path, clock=ManualClock()) as importer,
    ):
        assert await server.get_handle("20.500.1/x") is None
        await importer.load([("20.500.1/x", [v(1)])])
        assert await server.get_handle("20.500.1/X") == [v(1)]
        assert await server.serial() == 1


async def test_reads_off_the_loop_thread(tmp_path: Path) -> None:
    async with SQLiteStore(str(tmp_path / "n.db"), inline_reads=False, clock=ManualClock()) as s:
        assert s._rconn is None
        await s.create_handle("20.500.1/a", [v(1)])
        assert await s.get_handle("20.500.1/A") == [v(1)]
        assert await s.serial() == 1
        await s.home_prefix("20.500.1")
        assert await s.homed_prefixes() == ["20.500.1"]


async def test_open_store_url(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/sub/dir/node.db", clock=ManualClock())
    assert isinstance(store, SQLiteStore)
    async with store:  # parent directories are created
        assert await store.serial() == 0
    assert (tmp_path / "sub/dir/node.db").exists()


def test_memory_database_is_refused() -> None:
    with pytest.raises(ValueError):
        SQLiteStore(":memory:", clock=ManualClock())


async def test_use_when_closed_is_an_error(tmp_path: Path) -> None:
    s = SQLiteStore(str(tmp_path / "n.db"), clock=ManualClock())
    with pytest.raises(RuntimeError):
        await s.create_handle("20.500.1/a", [v(1)])
    await s.open()
    await s.close()
    await s.close()  # closing twice is harmless
    with pytest.raises(RuntimeError):
        await s.list_handles("20.500.1")


async def test_concurrent_writes_commit_together_each_all_or_nothing(db: SQLiteStore) -> None:
    """Group commit (issue 16, writes): writes queued together share one transaction, each
    in a savepoint of its own, so one failing (a clash, a broken effect) loses nothing of
    the others and leaves nothing of itself; each gets its own serial, in queue order, and
    the subscribers hear the last one before any caller resumes."""
    await db.create_handle("20.500.1/taken", [v(1)])
    groups: list[int] = []
    steps = db._group_steps

    def counting(conn, group, outcomes):
        groups.append(len(group))
        return steps(conn, group, outcomes)

    db._group_steps = counting  # type: ignore[method-assign]
    heard: list[int] = []
    await db.subscribe(heard.append)
    names = [f"20.500.1/g{n}" for n in range(6)]
    writes = [db.create_handle(name, [v(1, name.encode())]) for name in names[:3]]
    writes.append(db.create_handle("20.500.1/TAKEN", [v(1)]))  # clashes: only it fails
    writes.append(db.add_values("20.500.1/taken", [v(2), v(2)]))  # refused by its checks
    writes += [db.create_handle(name, [v(1, name.encode())]) for name in names[3:]]
    outcomes = await asyncio.gather(*writes, return_exceptions=True)
    assert groups[0] == len(writes)  # queued in one turn of the loop: one transaction
    assert isinstance(outcomes[3], HandleAlreadyExists)
    assert isinstance(outcomes[4], IdnodeError)
    serials = [o for o in outcomes if isinstance(o, int)]
    assert serials == sorted(serials) and len(set(serials)) == 6
    assert serials == list(range(serials[0], serials[0] + 6))  # the failed ones took none
    assert heard[-1] == serials[-1]
    for name in names:
        assert await db.get_handle(name) == [v(1, name.encode())]
    assert await db.get_handle("20.500.1/taken") == [v(1)]
    log = await db.transactions(0)
    assert [t.handle for t in log][-6:] == names


async def test_a_group_commit_runs_on_the_loop_thread(db: SQLiteStore) -> None:
    """Issue 16, writes: a hop to the writer thread and back (futex waits, the GIL handed
    over twice) cost about a sixth of a create's server time, so a group commits inline."""
    threads: list[threading.Thread] = []
    steps = db._group_steps

    def recording(conn, group, outcomes):
        threads.append(threading.current_thread())
        return steps(conn, group, outcomes)

    db._group_steps = recording  # type: ignore[method-assign]
    await asyncio.gather(*(db.create_handle(f"20.500.1/t{n}", [v(1)]) for n in range(3)))
    await db.create_handle("20.500.1/alone", [v(1)])
    assert threads == [threading.main_thread()] * len(threads) and threads
    assert db._wconn.execute("PRAGMA temp_store").fetchone()[0] == 2  # journals in memory
    assert await db.get_handle("20.500.1/t2") == [v(1)]


async def test_a_burst_commits_in_bounded_groups_and_the_loop_turns_between(
    db: SQLiteStore,
) -> None:
    """An inline group holds the loop while it runs: a burst is cut into groups of at most
    ``_GROUP_MAX``, and the first group's callers have their answers before the next
    group starts."""
    groups: list[int] = []
    answered_before: list[int] = []
    steps = db._group_steps

    def recording(conn, group, outcomes):
        groups.append(len(group))
        answered_before.append(sum(t.done() for t in tasks))
        return steps(conn, group, outcomes)

    db._group_steps = recording  # type: ignore[method-assign]
    burst = 3 * engine._GROUP_MAX + 5
    tasks = [
        asyncio.ensure_future(db.create_handle(f"20.500.1/b{n}", [v(1)])) for n in range(burst)
    ]
    serials = await asyncio.gather(*tasks)
    assert sum(groups) == burst and max(groups) <= engine._GROUP_MAX and len(groups) >= 4
    assert answered_before[1] >= groups[0]
    assert serials == sorted(serials) and len(set(serials)) == burst


async def test_the_loop_turns_between_two_writes_of_a_group(db: SQLiteStore) -> None:
    """A resolution arriving during a group waits for one write, not for the group: other
    work runs between two writes of one transaction (``bench/writes.py --probe``)."""
    events: list[str] = []
    steps = db._group_steps

    def recording(conn, group, outcomes):
        for _ in steps(conn, group, outcomes):
            events.append("write")
            yield

    db._group_steps = recording  # type: ignore[method-assign]

    async def ticking() -> None:
        while True:
            events.append("tick")
            await asyncio.sleep(0)

    ticker = asyncio.ensure_future(ticking())
    try:
        await asyncio.gather(*(db.create_handle(f"20.500.1/i{n}", [v(1)]) for n in range(4)))
    finally:
        ticker.cancel()
    between = events[events.index("write") : len(events) - events[::-1].index("write")]
    assert between.count("write") == 3 and "tick" in between  # one group, the loop turned
    assert await db.get_handle("20.500.1/i3") == [v(1)]


async def test_a_group_cancelled_between_writes_leaves_nothing(db: SQLiteStore) -> None:
    """The store closing (its committer cancelled) between two writes of a group rolls the
    whole group back: none of it was answered, none of it is written."""
    writes = [asyncio.ensure_future(db.create_handle(f"20.500.1/k{n}", [v(1)])) for n in range(3)]
    await asyncio.sleep(0)  # the writes queue and the committer starts
    await asyncio.sleep(0)  # the first write ran; the group waits for its next turn
    db._committer.cancel()
    await asyncio.gather(*writes, return_exceptions=True)
    assert all(w.cancelled() for w in writes)
    assert not db._wconn.in_transaction
    for n in range(3):
        assert await db.get_handle(f"20.500.1/k{n}") is None
    assert await db.create_handle("20.500.1/k0", [v(1)]) > 0  # the store goes on


def waits_on_the_writer_thread(store: SQLiteStore) -> threading.Event:
    """An event set when a group of ``store`` goes to the writer thread to wait for the
    file's write lock (``_run_group``, the busy path)."""
    started = threading.Event()
    run_group = store._run_group

    def waiting(group):
        started.set()
        return run_group(group)

    store._run_group = waiting  # type: ignore[method-assign]
    return started


async def test_a_write_waits_for_another_process_off_the_loop(tmp_path: Path) -> None:
    """While another process holds the file's write lock (say ``idnode import``), a write
    waits on the writer thread: the loop, and resolution with it, goes on meanwhile."""
    path = tmp_path / "node.db"
    async with SQLiteStore(str(path), clock=ManualClock(), busy_timeout=120) as s:
        await s.create_handle("20.500.1/a", [v(1)])
        waiting = waits_on_the_writer_thread(s)
        other = sqlite3.connect(path, isolation_level=None, timeout=5)
        try:
            other.execute("BEGIN IMMEDIATE")
            writing = asyncio.ensure_future(s.create_handle("20.500.1/b", [v(1)]))
            assert await asyncio.to_thread(waiting.wait, 60)  # the group went there
            for _ in range(5):
                await asyncio.sleep(0)  # the loop turns
                assert await s.get_handle("20.500.1/a") == [v(1)]
            assert not writing.done()
            other.execute("COMMIT")
            await writing
        finally:
            other.close()
        assert await s.get_handle("20.500.1/b") == [v(1)]


async def test_two_stores_on_one_file_write_in_turns(tmp_path: Path) -> None:
    """Two serving processes (``--workers 2``) on one file: each group that finds the other
    holding the write lock waits on its writer thread, and every write of both lands once,
    with a serial of its own."""
    path = str(tmp_path / "node.db")
    async with (
        SQLiteStore(path, clock=ManualClock(), busy_timeout=120) as one,
        SQLiteStore(path, clock=ManualClock(), busy_timeout=120) as two,
    ):
        waiting = waits_on_the_writer_thread(one)
        writes = [
            store.create_handle(f"20.500.1/{name}{n}", [v(1)])
            for n in range(60)
            for store, name in ((one, "a"), (two, "b"))
        ]
        async with two.atomic("registry"):  # holds the file's write lock across awaits
            landing = asyncio.gather(*writes)
            assert await asyncio.to_thread(waiting.wait, 60)
            assert not landing.done()  # one's groups wait (on its writer thread) ...
            assert await one.get_handle("20.500.1/a0") is None  # ... and the loop goes on
        serials = await landing
        assert len(set(serials)) == len(writes)
        assert await one.count_handles("20.500.1") == len(writes)
        assert await two.get_handle("20.500.1/a59") == [v(1)]


async def test_checkpoints_run_between_writes_off_the_loop(tmp_path: Path) -> None:
    """No COMMIT on the loop copies the WAL into the database (fsyncs: milliseconds); the
    writer thread does, every few commits, between two transactions, so the main file
    catches up and the WAL is written over from its start instead of growing."""
    path = tmp_path / "node.db"
    async with SQLiteStore(str(path), clock=ManualClock()) as s:
        assert s._wconn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        for n in range(engine._CHECKPOINT_EVERY):
            await s.create_handle(f"20.500.1/c{n}", [v(1)])
        await s._committer  # (the checkpoint follows the callers' answers)
        main_only = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # ignores the WAL
        try:
            rows = main_only.execute("SELECT count(*) FROM handles").fetchone()[0]
        finally:
            main_only.close()
        assert rows == engine._CHECKPOINT_EVERY
        wal, sizes = Path(f"{path}-wal"), []
        for phase in range(3):  # alike phases: a WAL written over stays the size of one
            for n in range(2 * engine._CHECKPOINT_EVERY):
                names = [f"20.500.1/w{phase}-{n}-{m}" for m in range(10)]
                await asyncio.gather(*(s.create_handle(x, [v(1, b"y" * 500)]) for x in names))
            sizes.append(wal.stat().st_size)
        assert sizes[2] < 1.5 * sizes[0], sizes


async def test_a_bulk_load_is_copied_into_the_file_before_the_next_write(tmp_path: Path) -> None:
    """Each batch of a bulk import is checkpointed on the writer thread before the next write
    begins, so the next batch starts the WAL over: a checkpoint beside the next batch never
    completed, the WAL grew by every batch (831 MB after 300,000 records), and growing it
    (pages zeroed, then copied) cost a third of the import's CPU (docs/performance.md)."""
    path = tmp_path / "node.db"
    layout = (HandleValue(1, "URL", b""), HandleValue(2, "EMAIL", b""))
    wal, sizes = Path(f"{path}-wal"), []
    async with SQLiteStore(str(path), clock=ManualClock(), answers=ENCODER) as s:
        for batch in range(4):  # alike batches of ~3 MB of frames each
            rows = [
                (f"20.500.1/b{batch}-{n}", (b"u" * 600, f"{n}@example.org".encode()))
                for n in range(2000)
            ]
            await s.load_rows([RowGroup(layout, rows)])
            await s.create_handle(f"20.500.1/next-{batch}", [v(1)])  # the next write
            main_only = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # no WAL
            try:
                count = main_only.execute("SELECT count(*) FROM handles").fetchone()[0]
            finally:
                main_only.close()
            assert count >= 2000 * (batch + 1)
            sizes.append(wal.stat().st_size)
    assert sizes[3] < 1.5 * sizes[0], sizes


async def test_inline_reads_of_one_turn_share_one_snapshot(tmp_path: Path) -> None:
    """The inline reads of one turn of the loop read one state (one read transaction: its
    begin and end cost more than the read, issue 16); the next turn reads the newest."""
    path = tmp_path / "node.db"
    async with SQLiteStore(str(path), clock=ManualClock()) as s:
        await s.create_handle("20.500.1/a", [v(1, b"old")])
        other = sqlite3.connect(path, isolation_level=None)  # another process's write
        try:
            assert await s.get_handle("20.500.1/a") == [v(1, b"old")]  # the turn's snapshot
            other.execute("UPDATE handle_values SET data = ? WHERE key = ?", (b"new", "20.500.1/A"))
            assert await s.get_handle("20.500.1/a") == [v(1, b"old")]  # (no await suspended)
            await asyncio.sleep(0)  # the next turn
            assert await s.get_handle("20.500.1/a") == [v(1, b"new")]
        finally:
            other.close()


async def test_own_writes_are_seen_by_the_next_inline_read(tmp_path: Path) -> None:
    """A snapshot taken before this store's write ends before the writer hears back."""
    async with SQLiteStore(str(tmp_path / "node.db"), clock=ManualClock()) as s:
        for n in range(1, 30):
            assert await s.get_handle(f"20.500.1/h{n}") is None  # a snapshot in this turn
            writing = asyncio.ensure_future(s.create_handle(f"20.500.1/h{n}", [v(1)]))
            assert await s.get_handle(f"20.500.1/h{n - 1}") in (None, [v(1)])
            await writing
            assert await s.get_handle(f"20.500.1/h{n}") == [v(1)]


def test_an_inline_read_without_a_loop_reads_on_its_own(tmp_path: Path) -> None:
    async def filled() -> SQLiteStore:
        store = SQLiteStore(str(tmp_path / "node.db"), clock=ManualClock())
        await store.open()
        await store.create_handle("20.500.1/a", [v(1)])
        return store

    store = asyncio.run(filled())
    assert store._rconn is not None
    assert store.public_answer_now("20.500.1/a") is None  # no encoder: no stored answer
    assert not store._rconn.in_transaction
    asyncio.run(store.close())


async def test_the_wire_read_is_one_descent_of_a_covering_index(tmp_path: Path) -> None:
    """The store path's read over UDP and TCP (``public_wire_now``) is answered from the
    index that holds the wire half of each stored answer, not by the key's index and then
    the row (two B-tree descents); and it reads what the whole answer holds."""
    async with SQLiteStore(str(tmp_path / "node.db"), clock=ManualClock(), answers=ENCODER) as s:
        await s.create_handle("20.500.1/a", [v(1, b"https://a"), v(2, b"https://b")])
        plan = s._rconn.execute(f"EXPLAIN QUERY PLAN {engine._GET_WIRE}", ("K",)).fetchall()
        assert "COVERING INDEX public_answers_wire" in plan[0][-1]
        whole = s.public_answer_now("20.500.1/a")
        assert whole is not None
        assert s.public_wire_now("20.500.1/A") == (whole.wire, whole.restricted)
        await s.delete_handle("20.500.1/a")
        assert s.public_wire_now("20.500.1/a") is None


async def test_a_store_from_before_the_wire_index_gains_it(tmp_path: Path) -> None:
    """A file of schema 9 (stored answers, no wire index) is upgraded at open: the index is
    built from the answers already stored, and the wire read finds them."""
    path = str(tmp_path / "node.db")
    async with SQLiteStore(path, clock=ManualClock(), answers=ENCODER) as s:
        await s.create_handle("20.500.1/old", [v(1, b"https://old")])
        expected = s.public_answer_now("20.500.1/old")
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX public_answers_wire")
    conn.execute("PRAGMA user_version = 9")
    conn.commit()
    conn.close()
    async with SQLiteStore(path, clock=ManualClock(), answers=ENCODER) as s:
        assert s._wconn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert expected is not None
        assert s.public_wire_now("20.500.1/old") == (expected.wire, expected.restricted)
