"""Done-when pieces of the cryptography work, against a real ``idnode serve``:

* an SM2-keyed admin (``idnode keygen --alg sm2``) manages handles over TCP, through
  ``AdminClient`` and through ``idnode admin ... --key sm2key.pem``;
* a value stored without PUBLIC_READ is not in the SQLite file or its WAL (SM4-GCM), while
  the authenticated admin reads it and an anonymous resolution does not show it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess

import pytest

from idnode.client.admin import AdminClient, AdminError
from idnode.codes import Permission
from idnode.crypto.keys import load_private_key_pem
from idnode.model import HS_PUBKEY, URL, HandleValue
from idnode.runtime import ManualClock, SeededRandom
from tests.conftest import IDNODE, start_node, stop_node

SECRET = b"batch 7 supplier: Acme Valve Works, unit price 31.70"
PRIVATE = Permission.ADMIN_READ | Permission.ADMIN_WRITE


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IDNODE, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A node whose operator identity 300:0.NA/<prefix> has been switched to an SM2 key."""
    node = start_node(tmp_path_factory.mktemp("sm2-admin"), demo=False)
    keyfile = node.directory / "sm2key.pem"
    made = run("keygen", str(keyfile), "--alg", "sm2")
    assert made.returncode == 0, made.stderr
    hs_pubkey = keyfile.with_name("sm2key.pem.pub").read_bytes()
    assert hs_pubkey[4:15] == b"SM2_PUB_KEY"
    rsa = load_private_key_pem((node.directory / "admin_privkey.pem").read_bytes())

    async def switch() -> None:
        async with client(node, rsa) as c:
            await c.modify_values(f"0.NA/{node.prefix}", [HandleValue(300, HS_PUBKEY, hs_pubkey)])

    asyncio.run(switch())
    node.sm2_key = load_private_key_pem(keyfile.read_bytes())
    node.rsa_key = rsa
    node.keyfile = keyfile
    yield node
    stop_node(node)


def client(node, key) -> AdminClient:
    return AdminClient(node.host, node.port, "tcp", f"300:0.NA/{node.prefix}", private_key=key)


def test_sm2_admin_manages_handles_over_tcp(served):
    handle = f"{served.prefix}/sm2-managed"

    async def go() -> list[HandleValue]:
        async with client(served, served.sm2_key) as c:
            await c.create_handle(handle, [HandleValue(1, URL, b"https://example.com/v1")])
            await c.add_values(handle, [HandleValue(2, "NOTE", SECRET, PRIVATE)])
            await c.modify_values(handle, [HandleValue(1, URL, b"https://example.com/v2")])
            assert handle in await c.list_handles(served.prefix)
            return await c.resolve(handle)  # authenticated: restricted values included

    values = {v.index: v.data for v in asyncio.run(go())}
    assert values == {1: b"https://example.com/v2", 2: SECRET}

    # the SQLite file and its WAL never saw the restricted value in clear
    raw = b"".join(p.read_bytes() for p in served.directory.glob("node.db*"))
    assert SECRET not in raw
    assert b"https://example.com/v2" in raw  # public data is clear: the scan does see data
    try:
        with sqlite3.connect(served.directory / "node.db", timeout=5) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.OperationalError:
        pass  # the server may hold the lock; the files were scanned either way
    raw = b"".join(p.read_bytes() for p in served.directory.glob("node.db*"))
    assert SECRET not in raw

    # an anonymous resolution does not show it
    anon = run("get", handle, "--server", f"{served.host}:{served.port}", "--json")
    assert anon.returncode == 0, anon.stderr
    assert "https://example.com/v2" in anon.stdout and SECRET.decode() not in anon.stdout


def test_replaced_rsa_key_and_forged_sm2_answers_are_refused(served):
    from idnode.crypto.keys import generate_key

    async def attempt(key) -> int:
        async with client(served, key) as c:
            with pytest.raises(AdminError) as exc:
                await c.create_handle(f"{served.prefix}/nope", [HandleValue(1, URL, b"x")])
        return exc.value.code

    for key in (served.rsa_key, generate_key("sm2")):
        assert asyncio.run(attempt(key)) != 1


def test_cli_admin_with_sm2_key_file(served):
    handle = f"{served.prefix}/sm2-cli"
    auth = [
        "--server",
        f"{served.host}:{served.port}",
        "--protocol",
        "tcp",
        "--id",
        f"300:0.NA/{served.prefix}",
        "--key",
        str(served.keyfile),
    ]
    for args in (
        ("create", handle, "-v", "1:URL:https://example.com/cli"),
        ("add-value", handle, "-v", "2:DESC:made with SM2"),
        ("delete", handle),
    ):
        done = run("admin", *args, *auth)
        assert done.returncode == 0, done.stderr


def test_rotate_while_serving_and_reading(served):
    """``idnode keys rotate`` in another process while the node answers reads: every read
    returns the clear value, and afterwards every restricted value is under the new key."""
    handles = [f"{served.prefix}/rot-{i}" for i in range(12)]

    async def seed() -> None:
        async with client(served, served.sm2_key) as c:
            for h in handles:
                await c.create_handle(h, [HandleValue(2, "NOTE", SECRET, PRIVATE)])

    asyncio.run(seed())
    before = run("keys", "status", str(served.directory))
    assert before.returncode == 0, before.stderr
    rotation = subprocess.Popen(
        [*IDNODE, "keys", "rotate", str(served.directory), "--grace", "1.5", "--batch", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    async def read_until_done() -> int:
        reads = 0
        async with client(served, served.sm2_key) as c:
            while rotation.poll() is None or reads < 3:
                for h in handles[::4]:
                    values = await c.resolve(h)
                    assert [v.data for v in values] == [SECRET]
                    reads += 1
                await asyncio.sleep(0.02)
        return reads

    assert asyncio.run(read_until_done()) > 0
    out, err = rotation.communicate(timeout=60)
    assert rotation.returncode == 0, err
    assert "removed old keys" in out
    status = run("keys", "status", str(served.directory))
    lines = status.stdout.strip().splitlines()
    keys_listed = [ln for ln in lines if ln.startswith("key ") and ln.endswith("values")]
    assert len(keys_listed) == 1 and "(active)" in keys_listed[0]  # the old key is gone
    assert "clear" not in status.stdout and "unknown" not in status.stdout

    async def after() -> list[bytes]:  # the running node reads values sealed by the new key
        async with client(served, served.sm2_key) as c:
            return [v.data for h in handles for v in await c.resolve(h)]

    assert asyncio.run(after()) == [SECRET] * len(handles)
    raw = b"".join(p.read_bytes() for p in served.directory.glob("node.db*"))
    assert SECRET not in raw


def test_wrong_storage_key_is_reported_clearly(served, tmp_path):
    import shutil

    from idnode.crypto.keyring import create_key_file

    copy = tmp_path / "copy"
    shutil.copytree(served.directory, copy, ignore=shutil.ignore_patterns("*.pem*"))
    (copy / "storage_keys.json").unlink()
    create_key_file(
        copy / "storage_keys.json", random=SeededRandom(0), clock=ManualClock()
    )  # a different key: nothing opens
    status = run("keys", "status", str(copy))
    assert status.returncode == 0, status.stderr
    assert "under unknown key" in status.stdout
    (copy / "storage_keys.json").unlink()
    gone = run("keys", "status", str(copy))
    assert gone.returncode == 2 and "missing" in gone.stderr and "Traceback" not in gone.stderr
