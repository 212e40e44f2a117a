"""Resolution from a real PostgreSQL streaming replica (``[store] read_url``).

The test runs its own primary cluster (initdb, on a free port; the shared server's
pg_hba.conf allows no replication connections) and a hot standby made from it by
``pg_basebackup -R`` in a second data directory on another port, both stopped and removed
afterwards. Writes go to the primary, the resolver reads the standby: pausing the
standby's replay hides a new write from resolution (and shows as lag in ``/metrics``)
until replay resumes."""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import asyncpg
import httpx
import pytest

from idnode.app import open_node
from idnode.config import load_config
from idnode.errors import HandleNotFound
from idnode.model import HandleValue
from idnode.runtime import ManualClock, Runtime, SystemRandom
from idnode.service.resolve import ResolutionQuery, Values
from idnode.transport.http import build_app
from tests.conftest import free_port
from tests.transport.conftest import PREFIX, node_template  # noqa: F401

URL = HandleValue(1, "URL", b"https://example.com/replica")


def _bindir() -> Path:
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    return Path(found[-1]).parent


@pytest.fixture(scope="module")
def streaming():
    """(primary port, standby port) of a primary and its streaming hot standby."""
    bindir, as_root = _bindir(), os.geteuid() == 0
    root = Path(tempfile.mkdtemp(prefix="idnode-pg-replica-"))
    if as_root:  # PostgreSQL refuses to run as root: its files and processes are postgres'
        shutil.chown(root, "postgres", "postgres")

    def run(tool: str, *args: object) -> None:
        cmd = [str(bindir / tool), *map(str, args)]
        if as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    primary, standby = root / "primary", root / "standby"
    ports = free_port(), free_port()
    started = []
    try:
        run("initdb", "-D", primary, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {ports[0]}\n"
                f"unix_socket_directories = '{root}'\nwal_level = replica\n"
                "max_wal_senders = 4\nfsync = off\n"
            )
        run("pg_ctl", "-D", primary, "-l", root / "primary.log", "-w", "start")
        started.append(primary)
        run("pg_basebackup", "-h", "127.0.0.1", "-p", ports[0], "-U", "postgres",
            "-D", standby, "-R", "-X", "stream", "-c", "fast")  # fmt: skip
        with (standby / "postgresql.auto.conf").open("a") as conf:
            conf.write(f"\nport = {ports[1]}\nhot_standby = on\n")
        run("pg_ctl", "-D", standby, "-l", root / "standby.log", "-w", "start")
        started.append(standby)
        yield ports
    finally:
        for data in reversed(started):
            run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def dsn(port: int) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


async def until(check, timeout: float = 20.0):
    async with asyncio.timeout(timeout):
        while not (result := await check()):
            await asyncio.sleep(0.02)
        return result


async def test_reads_come_from_the_streaming_replica(streaming, node_template, tmp_path):  # noqa: F811
    primary_port, standby_port = streaming
    directory = tmp_path / "node"
    shutil.copytree(node_template, directory)
    cfg = load_config(directory, env={})
    cfg.store.url = f"{dsn(primary_port)}?schema=idnode"
    cfg.store.read_url = f"{dsn(standby_port)}?schema=idnode"
    node = await open_node(cfg, runtime=Runtime(ManualClock(), SystemRandom()))
    standby = await asyncpg.connect(dsn(standby_port))
    try:
        assert node.read_replica is not None
        await node.store.home_prefix(PREFIX)
        node.homed.add(PREFIX)
        announced: list[tuple[int, int]] = []  # (serial, the replica's serial when told)

        async def record(serial: int) -> None:
            announced.append((serial, await node.read_replica.replica.serial()))

        await node.read_replica.subscribe(lambda s: asyncio.ensure_future(record(s)))

        async def resolved(handle: str):
            try:
                answer = await node.resolver.resolve(ResolutionQuery(handle, public_only=True))
            except HandleNotFound:
                return None
            return answer if isinstance(answer, Values) else None

        await node.store.create_handle(f"{PREFIX}/r1", [URL])  # on the primary
        assert (await until(lambda: resolved(f"{PREFIX}/r1"))).values == (URL,)

        await standby.execute("SELECT pg_wal_replay_pause()")
        await until(lambda: standby.fetchval("SELECT pg_get_wal_replay_pause_state() = 'paused'"))
        serial = await node.store.create_handle(f"{PREFIX}/r2", [URL])
        assert await node.store.get_handle(f"{PREFIX}/r2") is not None  # the primary has it
        assert await resolved(f"{PREFIX}/r2") is None  # the replica does not, yet
        metrics = await get_metrics(node)
        assert "idnode_store_replica_lag_transactions 1.0" in metrics
        assert not [a for a in announced if a[0] >= serial]  # caches wait for the replay

        await standby.execute("SELECT pg_wal_replay_resume()")
        assert await until(lambda: resolved(f"{PREFIX}/r2"))
        await until(lambda: _true(any(s >= serial for s, _ in announced)))
        assert all(replica >= s for s, replica in announced)  # told only once replayed
        assert "idnode_store_replica_lag_transactions 0.0" in await get_metrics(node)
    finally:
        await standby.close()
        await node.close()


async def _true(value: bool) -> bool:
    return value


async def get_metrics(node) -> str:
    transport = httpx.ASGITransport(
        app=build_app(node, extra_routes=node.routes), client=("127.0.0.1", 5000)
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as c:
        reply = await c.get("/metrics")
    assert reply.status_code == 200, reply.text
    return reply.text
