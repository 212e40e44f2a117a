"""``idnode backup`` / ``restore``: a consistent online snapshot with its serial and SM3
digests, refused when damaged; SQLite (online backup API) and PostgreSQL (pg_dump)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3

import pytest

from idnode.bootstrap import init_node
from idnode.config import CONFIG_NAME, load_config
from idnode.model import HandleValue
from idnode.replication.backup import BackupError, backup, read_manifest, restore
from idnode.runtime import system
from idnode.store.encrypted import configured_store
from tests.store.conftest import PG_DSN, drop_pg_schema, pg_schema_for

PREFIX = "20.500.171"
URL = HandleValue(1, "URL", b"https://example.com/b")


async def _node(directory, store_url: str = ""):
    await init_node(directory, name="b", prefixes=[PREFIX], store_url=store_url, runtime=system())
    cfg = load_config(directory, env={})
    store = configured_store(cfg, system())
    await store.open()
    return cfg, store


async def test_an_online_sqlite_backup_is_consistent_under_writes(tmp_path):
    cfg, store = await _node(tmp_path / "node")
    try:
        stop = asyncio.Event()

        async def writer() -> int:
            n = 0
            while not stop.is_set():
                await store.create_handle(f"{PREFIX}/h-{n}", [URL])
                n += 1
            return n

        task = asyncio.create_task(writer())
        await asyncio.sleep(0.05)
        manifest = await asyncio.to_thread(backup, cfg, tmp_path / "bk", 1234)
        stop.set()
        written = await task
    finally:
        await store.close()
    assert manifest.engine == "sqlite" and manifest.created == 1234
    snapshot = tmp_path / "bk" / manifest.store_file
    with sqlite3.connect(snapshot) as db:
        logged = db.execute("SELECT count(*) FROM txlog WHERE action = 'create'").fetchone()[0]
        handles = db.execute("SELECT count(*) FROM handles WHERE handle LIKE ?", (f"{PREFIX}/h-%",))
        held = handles.fetchone()[0]
        last = db.execute("SELECT max(serial) FROM txlog").fetchone()[0]
    # every write is in the snapshot with its log row, or neither: one read transaction
    assert 0 < held <= written and logged >= held and manifest.serial == last
    assert read_manifest(tmp_path / "bk").digests == manifest.digests
    restored = restore(tmp_path / "bk", tmp_path / "again")
    assert restored.serial == manifest.serial
    cfg2 = load_config(tmp_path / "again", env={})
    store2 = configured_store(cfg2, system())  # the storage key came along: values open
    await store2.open()
    try:
        assert await store2.get_handle(f"{PREFIX}/h-0") is not None
        assert await store2.serial() == manifest.serial
    finally:
        await store2.close()


async def test_a_damaged_or_altered_backup_is_refused(tmp_path):
    cfg, store = await _node(tmp_path / "node")
    await store.close()
    backup(cfg, tmp_path / "bk", 1)
    with pytest.raises(BackupError, match="not empty"):
        backup(cfg, tmp_path / "bk", 2)
    config = tmp_path / "bk" / "node" / CONFIG_NAME
    config.write_text(config.read_text() + "\n# altered\n")
    with pytest.raises(BackupError, match=f"node/{CONFIG_NAME} is missing or altered"):
        restore(tmp_path / "bk", tmp_path / "r")
    assert not (tmp_path / "r").exists()  # nothing half-restored
    shutil.rmtree(tmp_path / "bk")
    backup(cfg, tmp_path / "bk", 3)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "x").write_text("occupied")
    with pytest.raises(BackupError, match="not empty"):
        restore(tmp_path / "bk", tmp_path / "r")


async def test_a_postgresql_backup_is_a_pg_dump_and_restores(tmp_path):
    schema = pg_schema_for(tmp_path)
    await drop_pg_schema(tmp_path)
    url = f"{PG_DSN}?schema={schema}"
    try:
        cfg, store = await _node(tmp_path / "node", url)
        try:
            await store.create_handle(f"{PREFIX}/pg", [URL])
            serial = await store.serial()
        finally:
            await store.close()
        manifest = backup(cfg, tmp_path / "bk", 5)
        assert manifest.engine == "postgresql" and manifest.serial == serial
        assert (tmp_path / "bk" / "store.pgdump").stat().st_size > 0
        await drop_pg_schema(tmp_path)  # the database is lost
        restore(tmp_path / "bk", tmp_path / "again")
        cfg2 = load_config(tmp_path / "again", env={})
        store2 = configured_store(cfg2, system())
        await store2.open()
        try:
            assert (await store2.get_handle(f"{PREFIX}/pg"))[0].data == URL.data
            assert await store2.serial() == serial
        finally:
            await store2.close()
    finally:
        await drop_pg_schema(tmp_path)
