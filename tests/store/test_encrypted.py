"""SM4-GCM at rest over every engine (``make_store`` runs each test on SQLite and PostgreSQL):
what is sealed, what stays clear, AAD binding, wrong keys, and online rotation."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from idnode.codes import Permission
from idnode.crypto.keyring import (
    Keyring,
    StorageKey,
    add_active_key,
    create_key_file,
    key_id,
    load_keyring,
)
from idnode.model import HandleValue
from idnode.runtime import ManualClock, SeededRandom
from idnode.store.encrypted import (
    MAGIC,
    EncryptedStore,
    StorageKeyError,
    is_sealed,
    sealed_key_id,
)

PRIVATE = Permission.ADMIN_READ | Permission.ADMIN_WRITE
PUBLIC = PRIVATE | Permission.PUBLIC_READ
SECRET = b"supplier contract 42 -- do not publish"


def ring(raw: bytes = b"k" * 16) -> Keyring:
    key = StorageKey(key_id(raw), raw)
    return Keyring([key], key.id)


def values() -> list[HandleValue]:
    return [
        HandleValue(1, "URL", b"https://example.com/public", PUBLIC),
        HandleValue(2, "NOTE", SECRET, PRIVATE),
        HandleValue(3, "HS_SECKEY", b"hunter2", Permission.ADMIN_READ),
    ]


@pytest.fixture
async def pair(make_store):
    """(wrapper, the same engine unwrapped) over one storage."""
    inner = make_store()
    enc = EncryptedStore(inner, ring(), random=SeededRandom(2))
    await enc.open()
    try:
        yield enc, inner
    finally:
        await enc.close()


async def test_non_public_data_is_sealed_and_reads_back(pair):
    enc, inner = pair
    await enc.create_handle("20.500/a", values())
    raw = {v.index: v for v in await inner.get_handle("20.500/a")}
    assert raw[1].data == b"https://example.com/public"  # PUBLIC_READ stays clear
    for i in (2, 3):
        assert is_sealed(raw[i].data) and raw[i].data.startswith(MAGIC)
        assert SECRET not in raw[i].data and b"hunter2" not in raw[i].data
    assert await enc.get_handle("20.500/a") == values()
    # every write path seals: add, modify, load (a generator, consumed lazily)
    await enc.add_values("20.500/a", [HandleValue(4, "NOTE", b"added", PRIVATE)])
    await enc.modify_values("20.500/a", [HandleValue(2, "NOTE", b"changed", PRIVATE)])
    await enc.load((h, [HandleValue(1, "NOTE", b"loaded", PRIVATE)]) for h in ["20.500/b"])
    raw = {v.index: v.data for v in await inner.get_handle("20.500/a")}
    assert is_sealed(raw[2]) and is_sealed(raw[4])
    assert is_sealed((await inner.get_handle("20.500/b"))[0].data)
    got = {v.index: v.data for v in await enc.get_handle("20.500/a")}
    assert got[2] == b"changed" and got[4] == b"added"
    assert (await enc.get_handle("20.500/b"))[0].data == b"loaded"
    # the same plaintext twice is two different ciphertexts (random nonces)
    await enc.create_handle("20.500/c", values())
    await enc.create_handle("20.500/d", values())
    c2 = (await inner.get_handle("20.500/c"))[1].data
    d2 = (await inner.get_handle("20.500/d"))[1].data
    assert c2[:8] == d2[:8] and c2[8:] != d2[8:]  # same mark and key id, fresh nonce


async def test_ciphertext_moved_to_another_value_fails(pair):
    enc, inner = pair
    await enc.create_handle("20.500/a", values())
    sealed = (await inner.get_handle("20.500/a"))[1]
    await inner.add_values("20.500/a", [HandleValue(9, "NOTE", sealed.data, PRIVATE)])
    with pytest.raises(StorageKeyError, match="value 9 of 20.500/a") as exc:
        await enc.get_handle("20.500/a")
    assert SECRET.decode() not in str(exc.value)
    await inner.create_handle("20.500/other", [HandleValue(2, "NOTE", sealed.data, PRIVATE)])
    with pytest.raises(StorageKeyError, match="altered or moved"):
        await enc.get_handle("20.500/other")
    # a permission changed behind the node's back no longer opens either
    await inner.modify_values(
        "20.500/a", [HandleValue(2, "NOTE", sealed.data, Permission.ADMIN_READ)]
    )
    await inner.remove_values("20.500/a", [9])
    with pytest.raises(StorageKeyError):
        await enc.get_handle("20.500/a")


async def test_wrong_key_is_a_clear_error(make_store):
    async with EncryptedStore(make_store(), ring(b"a" * 16), random=SeededRandom(2)) as enc:
        await enc.create_handle("20.500/a", values())
    async with EncryptedStore(make_store(), ring(b"b" * 16), random=SeededRandom(2)) as wrong:
        with pytest.raises(StorageKeyError, match="lacks") as exc:
            await wrong.get_handle("20.500/a")
        assert key_id(b"a" * 16).hex() in str(exc.value)
        # the node still serves everything else
        await wrong.create_handle("20.500/new", values())
        assert await wrong.get_handle("20.500/new") == values()


async def test_rotation_reencrypts_everything_while_a_reader_reads(make_store, tmp_path: Path):
    path = tmp_path / "keys.json"
    old = create_key_file(path, random=SeededRandom(0), clock=ManualClock())
    keyring = load_keyring(path, env={}, clock=ManualClock())
    enc = EncryptedStore(make_store(), keyring, random=SeededRandom(2))
    await enc.open()
    try:
        inner = enc.inner
        handles = [f"20.500/r{i}" for i in range(60)]
        await enc.load((h, values()) for h in handles)
        await inner.create_handle("20.500/legacy", [HandleValue(2, "NOTE", SECRET, PRIVATE)])
        assert await enc.census() == {old.id.hex(): 120, "clear": 1}

        new = add_active_key(path, random=SeededRandom(1), clock=ManualClock())
        stop = asyncio.Event()
        reads = 0

        async def reader() -> None:
            nonlocal reads
            while not stop.is_set():
                for h in handles[::7]:
                    assert await enc.get_handle(h) == values()
                    reads += 1
                await asyncio.sleep(0)

        edited = [h for i, h in enumerate(handles) if i % 7][:10]  # not the reader's ones

        async def writer() -> None:  # writes during rotation must not be lost
            for i, h in enumerate(edited):
                note = HandleValue(2, "NOTE", b"edit %d" % i, PRIVATE)
                await enc.modify_values(h, [note])
                await asyncio.sleep(0)

        task = asyncio.create_task(reader())
        report, _ = await asyncio.gather(enc.reencrypt(batch=7), writer())
        stop.set()
        await task
        assert reads > 0
        assert report.active == new.id.hex() and report.remaining == {}
        assert await enc.census() == {new.id.hex(): 121}
        for h in handles:
            for v in await inner.get_handle(h):
                if v.index != 1:
                    assert sealed_key_id(v.data) == new.id
        for i, h in enumerate(edited):
            assert (await enc.get_handle(h))[1].data == b"edit %d" % i
        assert (await enc.get_handle("20.500/legacy"))[0].data == SECRET
        assert SECRET not in (await inner.get_handle("20.500/legacy"))[0].data
    finally:
        await enc.close()


async def test_sqlite_file_holds_no_plaintext(tmp_path: Path):
    from idnode.store.sqlite import SQLiteStore

    db = tmp_path / "node.db"
    async with EncryptedStore(
        SQLiteStore(str(db), clock=ManualClock()), ring(), random=SeededRandom(2)
    ) as enc:
        await enc.create_handle("20.500/a", values())
        await enc.modify_values("20.500/a", [HandleValue(2, "NOTE", SECRET + b"!", PRIVATE)])
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("node.db*"))
        assert SECRET not in raw and b"hunter2" not in raw
        assert b"https://example.com/public" in raw  # the check itself can find plaintext
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("node.db*"))
    assert SECRET not in raw and b"hunter2" not in raw


async def test_rotation_finds_records_whose_log_rows_were_pruned(make_store, clock, tmp_path):
    """Retention prunes the transaction log (``replication.retention``): a rotation must
    still re-seal every record, so it walks the records, not the log."""
    from idnode.replication.retention import DAY, prune

    path = tmp_path / "keys.json"
    old = create_key_file(path, random=SeededRandom(0), clock=ManualClock())
    keyring = load_keyring(path, env={}, clock=ManualClock())
    enc = EncryptedStore(make_store(), keyring, random=SeededRandom(2))
    await enc.open()
    try:
        for i in range(5):
            await enc.create_handle(f"20.500/p{i}", values())
        report = await prune(enc, now=clock.now + 400 * DAY, keep_days=30)
        assert report is not None and report.transactions == 4  # the newest row stays
        assert await enc.census() == {old.id.hex(): 10}
        new = add_active_key(path, random=SeededRandom(1), clock=ManualClock())
        assert (await enc.reencrypt()).remaining == {}
        assert await enc.census() == {new.id.hex(): 10}
    finally:
        await enc.close()


async def test_the_wire_read_is_the_engines_own_and_holds_public_values_only(tmp_path: Path):
    """The store path's read over UDP and TCP goes straight to the engine (no call of the
    wrapper's in between: public values are never sealed), and what it reads holds the
    public values, never a sealed one's plaintext."""
    from idnode.store.sqlite import SQLiteStore
    from idnode.wire.public_answer import ENCODER

    inner = SQLiteStore(str(tmp_path / "node.db"), clock=ManualClock(), answers=ENCODER)
    async with EncryptedStore(inner, ring(), random=SeededRandom(2)) as enc:
        await enc.create_handle("20.500/a", values())
        assert enc.public_wire_now.__self__ is inner
        stored = enc.public_wire_now("20.500/a")
        assert stored is not None and stored.restricted  # (HS_SECKEY: admin-readable)
        assert b"https://example.com/public" in stored.wire
        assert SECRET not in stored.wire and b"hunter2" not in stored.wire
