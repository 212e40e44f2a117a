"""Issue 13 "done when", against real ``idnode serve`` processes: everything a node knows is
in its store, written in the transaction of the change that causes it.

* ``kill -9`` during 1,000 concurrent writes leaves store, history, audit and statistics
  agreeing exactly;
* no plaintext of an admin-only value (nor of a secret key) is found in any file of the node
  directory, nor in a dump of a PostgreSQL store;
* statistics are exact with ``--workers 2``;
* two nodes on one PostgreSQL database share governance state: a suspension made through
  one is refused by the other.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from idnode import client
from idnode.app import open_node
from idnode.codes import Permission
from idnode.config import load_config
from idnode.model import HS_SECKEY, HandleValue
from idnode.runtime import system
from tests.conftest import IDNODE, RunningNode, eventually, free_port, serve_node, start_node
from tests.conftest import stop_node as stop
from tests.store.conftest import PG_DSN, pg_connect

NODE_PREFIX, ENTERPRISE = "88.123", "88.123.4567"
CREDIT_CODE = "91350100M000100Y43"
FIELDS = {"PART_NUMBER": "BP-1", "PART_NAME": "Brake pad", "MODEL": "X1", "BATCH": "B1",
          "PRODUCTION_DATE": "2026-11-02", "MANUFACTURER": "Fujian Auto Parts"}  # fmt: skip
MARKER = b"admin-only-8f3c1d9a-plaintext"
SECRET = b"hs-seckey-5b7e2c40-plaintext"


def run(*args: str) -> str:
    done = subprocess.run([*IDNODE, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def governed(node: RunningNode) -> dict[str, str]:
    """An operator, an approved organisation and its allocated prefix; the tokens."""
    op = json.loads(run("account", "create-operator", str(node.directory)))["token"]
    with httpx.Client(base_url=node.http_url + "/api/mgmt", timeout=30) as api:
        bearer = {"authorization": f"Bearer {op}"}
        org = api.post("/organisations", json={
            "legal_name": "Fujian Auto Parts Co., Ltd.", "credit_code": CREDIT_CODE,
            "contact": {"name": "Lin Wei", "phone": "+86 591 8888 0000",
                        "email": "lin@example.cn"}}).json()  # fmt: skip
        approved = api.post(f"/organisations/{org['id']}/approve", headers=bearer)
        assert approved.status_code == 200, approved.text
        r = api.post("/prefixes", headers=bearer, json={
            "prefix": ENTERPRISE, "template": "auto-parts", "org_id": org["id"]})  # fmt: skip
        assert r.status_code == 201, r.text
        for action in ("approve", "allocate"):
            r = api.post(f"/prefixes/{ENTERPRISE}/{action}", headers=bearer)
            assert r.status_code == 200, r.text
    return {"operator": op, "org_admin": approved.json()["admin"]["token"]}


async def register(node: RunningNode, token: str, suffixes: list[str], acked: list[str]):
    """PUT each identifier through the management API, 50 at a time; ``acked`` collects
    those the node confirmed (the node may die under us)."""
    limits = httpx.Limits(max_connections=50)
    headers = {"authorization": f"Bearer {token}"}
    base = node.http_url + "/api/mgmt/identifiers/"
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as http:

        async def one(suffix: str) -> None:
            try:
                r = await http.put(base + f"{ENTERPRISE}/{suffix}", json={"fields": FIELDS})
            except httpx.HTTPError:
                return  # killed mid-request
            if r.status_code == 201:
                acked.append(suffix)

        await asyncio.gather(*(one(s) for s in suffixes))


async def tallies(directory: Path) -> dict[str, int]:
    """What the store holds about the enterprise prefix, read after the node is gone."""
    node = await open_node(load_config(directory, env={}), runtime=system())
    try:
        q = node.store.query_value
        like = f"{ENTERPRISE}/%"
        return {
            "records": await node.store.count_handles(ENTERPRISE),
            "history": await q(
                "SELECT count(*) FROM {s}.versions WHERE action = 'create' AND handle LIKE ?",
                like,
            ),
            "audit": await q(
                "SELECT count(*) FROM {s}.audit WHERE action = 'handle.create' AND target LIKE ?",
                like,
            ),
            "registrations": await q(
                "SELECT CAST(coalesce(sum(registrations), 0) AS bigint) FROM {s}.stats_daily"
                " WHERE prefix = ?",
                ENTERPRISE,
            ),
        }
    finally:
        await node.close()


def test_kill_9_during_1000_concurrent_writes_leaves_everything_agreeing(tmp_path):
    node = start_node(tmp_path / "n", prefix=NODE_PREFIX, demo=False)
    try:
        token = governed(node)["org_admin"]
        acked: list[str] = []

        async def write_then_kill() -> None:
            writes = asyncio.create_task(
                register(node, token, [f"K{i:05d}" for i in range(1000)], acked)
            )
            while len(acked) < 300 and not writes.done():
                await asyncio.sleep(0.005)
            os.kill(node.process.pid, signal.SIGKILL)  # mid-flight, no chance to clean up
            await writes

        asyncio.run(write_then_kill())
    finally:
        node.process.kill()
        node.process.communicate()
    counts = asyncio.run(tallies(node.directory))
    print(f"kill -9 after {len(acked)} acknowledged writes: {counts}")
    assert len(set(counts.values())) == 1, counts  # all four agree exactly
    assert 300 <= len(acked) <= counts["records"] < 1000, (len(acked), counts)


def _plaintext_forms(secret: bytes) -> list[bytes]:
    """The secret as text, hex, and base64 at every alignment (JSON keeps bytes as base64)."""
    forms = [secret, secret.hex().encode()]
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + secret)[4 * ((shift + 2) // 3) :]
        forms.append(encoded[: len(encoded) - 4])
    return forms


async def _write_private_values(directory: Path) -> None:
    """Create, change and suspend a record holding an admin-only value and a secret key:
    the record, its history, its lifecycle and its audit all touch them."""
    node = await open_node(load_config(directory, env={}), runtime=system())
    try:
        operator = next(iter(node.admin.acl.operators))
        private = Permission.ADMIN_READ | Permission.ADMIN_WRITE
        handle = f"{NODE_PREFIX}/secret-holder"
        values = [
            HandleValue(5, "NOTE", MARKER, private),
            HandleValue(300, HS_SECKEY, SECRET, private),
        ]
        await node.admin.create_handle(operator, handle, values)
        await node.admin.modify_values(
            operator, handle, [HandleValue(5, "NOTE", MARKER + b"!", private)]
        )
        await node.registry.lifecycle.set_state(None, handle, "suspended", "review")
        await node.admin.create_handle(operator, f"{NODE_PREFIX}/gone", values)
        await node.admin.delete_handle(operator, f"{NODE_PREFIX}/gone")
    finally:
        await node.close()


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


def test_no_plaintext_of_a_private_value_in_any_file_of_the_node(tmp_path):
    directory = tmp_path / "n"
    run("init", str(directory), "--name", "t", "--prefix", NODE_PREFIX)
    asyncio.run(_write_private_values(directory))
    forms = _plaintext_forms(MARKER) + _plaintext_forms(SECRET)
    found = [(p.name, f) for p in _files(directory) for f in forms if f in p.read_bytes()]
    assert found == []

    # and the values are there, sealed: the node itself reads them back
    async def read_back() -> list[bytes]:
        node = await open_node(load_config(directory, env={}), runtime=system())
        try:
            kept = await node.store.history(f"{NODE_PREFIX}/secret-holder")
            return [v.data for k in kept if k.values for v in k.values if v.index == 5]
        finally:
            await node.close()

    assert asyncio.run(read_back()) == [MARKER, MARKER + b"!"]  # created, then modified


def _pg_url(schema: str) -> str:
    return f"{PG_DSN}?schema={schema}"


async def _drop(schema: str) -> None:
    conn = await pg_connect()
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


@pytest.fixture
def pg_schema(tmp_path):
    schema = "e2e_" + os.urandom(6).hex()
    asyncio.run(_drop(schema))
    yield schema
    asyncio.run(_drop(schema))


def test_no_plaintext_in_a_postgresql_dump(tmp_path, pg_schema):
    directory = tmp_path / "n"
    run("init", str(directory), "--name", "t", "--prefix", NODE_PREFIX,
        "--store", _pg_url(pg_schema))  # fmt: skip
    asyncio.run(_write_private_values(directory))
    dump = subprocess.run(
        ["pg_dump", "--data-only", "--schema", pg_schema, PG_DSN],
        capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    assert b"secret-holder" in dump  # the dump holds the records...
    forms = _plaintext_forms(MARKER) + _plaintext_forms(SECRET)
    assert [f for f in forms if f in dump] == []  # ...but no private value in clear
    assert [f for f in forms if f.hex().encode() in dump] == []  # nor as bytea hex


def test_statistics_are_exact_with_two_workers(tmp_path):
    node = start_node(
        tmp_path / "n", prefix=NODE_PREFIX, demo=False, serve_args=("--workers", "2"),
        env={"IDNODE_LIMITS_EXEMPT": "127.0.0.1"},
    )  # fmt: skip
    try:
        tokens = governed(node)
        acked: list[str] = []
        asyncio.run(register(node, tokens["org_admin"], [f"W{i:04d}" for i in range(200)], acked))
        assert len(acked) == 200
        for suffix in acked[:50]:  # resolutions through both workers (the kernel spreads them)
            handle = f"{ENTERPRISE}/{suffix}"
            reply = asyncio.run(
                client.request_udp(node.host, node.port, client.resolution_request(handle))
            )
            assert reply.header.response_code == 1
        stats_url = node.http_url + f"/api/mgmt/stats?prefix={ENTERPRISE}"
        headers = {"authorization": f"Bearer {tokens['operator']}"}

        def flushed() -> list[dict] | None:
            rows = httpx.get(stats_url, headers=headers, timeout=10).json()
            return rows if sum(r["resolutions"] for r in rows) >= 50 else None

        rows = eventually(flushed, "both workers to flush their resolution counts")
        assert sum(r["registrations"] for r in rows) == 200
        assert sum(r["resolutions"] for r in rows) == 50
    finally:
        stop(node)


def test_two_nodes_on_one_postgresql_share_a_suspension(tmp_path, pg_schema):
    first = start_node(tmp_path / "a", prefix=NODE_PREFIX, demo=False,
                       init_args=("--store", _pg_url(pg_schema)))  # fmt: skip
    shutil.copytree(first.directory, tmp_path / "b", ignore=shutil.ignore_patterns("*.pid"))
    second = serve_node(tmp_path / "b", free_port(), free_port(), NODE_PREFIX)
    try:
        tokens = governed(first)
        acked: list[str] = []
        asyncio.run(register(first, tokens["org_admin"], ["SHARED"], acked))
        handle = f"{ENTERPRISE}/SHARED"

        def code(node: RunningNode) -> int:
            reply = asyncio.run(
                client.request_udp(node.host, node.port, client.resolution_request(handle))
            )
            return reply.header.response_code

        assert code(second) == 1  # the other host serves what the first registered
        r = httpx.post(
            f"{first.http_url}/api/mgmt/identifiers/{handle}/state/suspended",
            json={"reason": "recall"},
            headers={"authorization": f"Bearer {tokens['operator']}"},
        )
        assert r.status_code == 200, r.text
        suspended_at = time.monotonic()
        eventually(lambda: code(second) == 100, "the second node to refuse the suspended id")
        print(f"refused by the other node {time.monotonic() - suspended_at:.3f} s later")
        body = httpx.get(f"{second.http_url}/api/handles/{handle}").json()
        assert body["responseCode"] == 100 and body["message"].startswith("suspended:")
    finally:
        stop(second)
        stop(first)
