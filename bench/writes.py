"""Authenticated creates from concurrent clients over sessions, and exact statistics (issue 16).

For each ``--workers`` count, a fresh node (``idnode init``, ``idnode serve --workers N``,
SQLite) and, one after the other, each for ``--seconds``:

1. **binary**: ``--connections`` TCP connections, each with its own session (the operator
   authenticates once per connection, ``AdminClient.open_session``), creating identifiers
   of one URL value in a closed loop (one request in flight per connection);
2. **REST**: ``--connections`` HTTP connections, each with its own session
   (``POST /api/sessions``, answered with the operator's key), creating identifiers with
   ``PUT /api/handles/{handle}`` in a closed loop;
3. **statistics**: every identifier created is resolved once over UDP, then (after the
   workers' flush interval) the node's statistics (``stats_daily``, what
   ``/api/mgmt/stats`` reports) must count exactly the
   registrations made and the resolutions asked (one client, each identifier once: the
   gate counts a client's repeats of one identifier once a minute).

Prints creates/s, the server's CPU per create (all its processes, from ``/proc``), and the
statistics against the requests made. Asserts nothing.

    .venv/bin/python bench/writes.py [--workers 1,2] [--connections 8] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.conftest helpers

from tests.conftest import IDNODE, free_port, serve_node, stop_node  # noqa: E402

from idnode.auth.identity import Identity  # noqa: E402
from idnode.auth.rest import make_rest_session_authorization  # noqa: E402
from idnode.client.admin import AdminClient  # noqa: E402
from idnode.client.resolve import request_udp, resolution_request  # noqa: E402
from idnode.codes import ResponseCode  # noqa: E402
from idnode.crypto.keys import load_private_key_pem  # noqa: E402
from idnode.model import HandleValue, handle_key  # noqa: E402

PREFIX = "20.500.161"
OPERATOR = Identity(f"0.NA/{PREFIX}", 300)
FLUSH_WAIT = 7.0  # seconds: the statistics' flush interval (5 s) and a margin


def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its live children (the serving workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                pids.append(int(entry.name))
    total = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


async def binary_creates(port: int, key, connections: int, seconds: float) -> list[str]:
    made: list[str] = []
    stop_at = time.monotonic() + seconds

    async def client(c: int) -> None:
        async with AdminClient("127.0.0.1", port, "tcp", f"300:0.NA/{PREFIX}", key) as admin:
            await admin.open_session()
            n = 0
            while time.monotonic() < stop_at:
                handle = f"{PREFIX}/bin-{c}-{n}"
                url = HandleValue(1, "URL", f"https://example.com/{c}/{n}".encode())
                await admin.create_handle(handle, [url])
                made.append(handle)
                n += 1

    await asyncio.gather(*(client(c) for c in range(connections)))
    return made


async def rest_session(http: httpx.AsyncClient, key) -> dict[str, str]:
    opened = (await http.post("/api/sessions")).json()
    nonce = base64.b64decode(opened["nonce"])
    answer = make_rest_session_authorization(opened["sessionId"], OPERATOR, nonce, private_key=key)
    resp = await http.put("/api/sessions/this", headers={"Authorization": answer})
    resp.raise_for_status()
    return {"Authorization": f'Handle sessionId="{opened["sessionId"]}"'}


async def rest_creates(url: str, key, connections: int, seconds: float) -> list[str]:
    made: list[str] = []
    stop_at = time.monotonic() + seconds

    async def client(c: int) -> None:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
            auth = await rest_session(http, key)
            http.cookies.clear()  # the session header alone
            n = 0
            while time.monotonic() < stop_at:
                handle = f"{PREFIX}/rest-{c}-{n}"
                record = {"values": [{"index": 1, "type": "URL", "data": f"https://e/{c}/{n}"}]}
                resp = await http.put(f"/api/handles/{handle}", json=record, headers=auth)
                if resp.status_code != 201:
                    raise RuntimeError(f"PUT {handle}: {resp.status_code} {resp.text[:200]}")
                made.append(handle)
                n += 1

    await asyncio.gather(*(client(c) for c in range(connections)))
    return made


async def resolve_all(port: int, handles: list[str], in_flight: int = 32) -> int:
    """Resolve each handle once over UDP (retrying a lost datagram); how many answered 1."""
    answered = 0
    queue = list(handles)

    async def worker() -> None:
        nonlocal answered
        while queue:
            handle = queue.pop()
            for _ in range(5):
                try:
                    reply = await request_udp(
                        "127.0.0.1", port, resolution_request(handle), attempts=1
                    )
                except TimeoutError:
                    continue
                answered += reply.header.response_code == ResponseCode.SUCCESS
                break

    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return answered


def counted(db: Path) -> tuple[int, int]:
    """Registrations and resolutions the node's store holds for the prefix (``stats_daily``,
    what ``/api/mgmt/stats`` reports), read while it serves."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT sum(registrations), sum(resolutions) FROM stats_daily WHERE prefix = ?",
            (handle_key(PREFIX),),
        ).fetchone()
    return int(row[0] or 0), int(row[1] or 0)


def run(workers: int, connections: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "node"
        port, http_port = free_port(), free_port()
        subprocess.run(
            [*IDNODE, "init", str(root), "--prefix", PREFIX, "--udp-port", str(port),
             "--tcp-port", str(port), "--http-port", str(http_port)],
            check=True, capture_output=True,
        )  # fmt: skip
        key = load_private_key_pem((root / "admin_privkey.pem").read_bytes())
        node = serve_node(root, port, http_port, PREFIX, serve_args=("--workers", str(workers)))
        try:
            print(f"--workers {workers}, {connections} connections, {seconds:g} s each")
            made: list[str] = []
            runs = (
                ("binary (TCP, sessions)", binary_creates, port),
                ("REST (PUT, sessions)", rest_creates, node.http_url),
            )
            for name, creates, where in runs:
                cpu0, t0 = tree_cpu(node.process.pid), time.monotonic()
                done = asyncio.run(creates(where, key, connections, seconds))
                took, cpu = time.monotonic() - t0, tree_cpu(node.process.pid) - cpu0
                made += done
                print(f"  {name}: {len(done):,} creates in {took:.1f} s = "
                      f"{len(done) / took:,.0f}/s; server CPU {cpu / len(done) * 1e6:,.0f} us "
                      "per create")  # fmt: skip
            answered = asyncio.run(resolve_all(port, made))
            time.sleep(FLUSH_WAIT)
            registrations, resolutions = counted(root / "node.db")
            print(f"  statistics: registrations {registrations:,} counted / {len(made):,} made"
                  f" ({'exact' if registrations == len(made) else 'NOT EXACT'}); resolutions "
                  f"{resolutions:,} counted / {answered:,} answered"
                  f" ({'exact' if resolutions == answered else 'NOT EXACT'})")  # fmt: skip
        finally:
            stop_node(node)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f".venv/bin/python bench/writes.py --workers {a.workers} "
          f"--connections {a.connections} --seconds {a.seconds:g}")  # fmt: skip
    for w in (int(x) for x in a.workers.split(",")):
        run(w, a.connections, a.seconds)


if __name__ == "__main__":
    main()
