"""Authenticated creates from concurrent clients over sessions, and exact statistics (issue 16).

For each ``--workers`` count, a fresh node (``idnode init``, ``idnode serve --workers N``,
SQLite) and, one after the other, each for ``--seconds``:

1. **binary**: ``--connections`` TCP connections, each with its own session (the operator
   authenticates once per connection, ``AdminClient.open_session``), creating identifiers
   of one URL value in a closed loop (one request in flight per connection);
2. **REST**: ``--connections`` HTTP connections, each with its own session
   (``POST /api/sessions``, answered with the operator's key), creating identifiers with
   ``PUT /api/handles/{handle}`` in a closed loop;
   **rest-new**: the same clients, but each PUT on a new connection, so with
   ``--workers 2`` the kernel spreads one session's requests over both workers (sessions
   live in the store: every worker must honour them); refusals are counted, not raised;
3. **statistics**: every identifier created is resolved once over UDP, then (after the
   workers' flush interval) the node's statistics (``stats_daily``, what
   ``/api/mgmt/stats`` reports) must count exactly the
   registrations made and the resolutions asked (one client, each identifier once: the
   gate counts a client's repeats of one identifier once a minute).

Prints creates/s, the server's CPU per create (all its processes, from ``/proc``) and, for
the Python clients (binary, REST), theirs: on two cores a closed loop cannot go faster than
two cores divided by the two together. Then the statistics against the requests made.
Asserts nothing. (``bench/write_layers.py`` splits the server's share by layer.)

    .venv/bin/python bench/writes.py [--workers 1,2] [--connections 8] [--seconds 5]
        [--paths binary,rest,rest-new,wrk] [--probe]

``--probe``: during each run another process resolves over UDP at 200/s, one at a time, and
the latencies (p50, p99, max) are printed: how long the writes keep resolution waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.conftest helpers

from tests.conftest import IDNODE, free_port, serve_node, stop_node  # noqa: E402
from udp_probe import Prober  # noqa: E402

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


REFUSED: dict[str, int] = {}  # path -> requests refused (rest-new counts, others raise)


async def rest_new_creates(url: str, key, connections: int, seconds: float) -> list[str]:
    """As ``rest_creates``, each PUT on a new connection (no keep-alive); 401s counted."""
    made: list[str] = []
    stop_at = time.monotonic() + seconds
    REFUSED["rest-new"] = 0

    async def client(c: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            auth = await rest_session(http, key)
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
            n = 0
            while time.monotonic() < stop_at:
                handle = f"{PREFIX}/new-{c}-{n}"
                record = {"values": [{"index": 1, "type": "URL", "data": f"https://e/{c}/{n}"}]}
                resp = await http.put(f"/api/handles/{handle}", json=record, headers=auth)
                n += 1
                if resp.status_code == 401:
                    REFUSED["rest-new"] += 1
                elif resp.status_code != 201:
                    raise RuntimeError(f"PUT {handle}: {resp.status_code} {resp.text[:200]}")
                else:
                    made.append(handle)

    await asyncio.gather(*(client(c) for c in range(connections)))
    return made


async def wrk_session(url: str, key) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        return (await rest_session(http, key))["Authorization"]


def wrk_creates(url: str, key, seconds: float, db: Path) -> tuple[list[str], str] | None:
    """``wrk -t1 -c64`` PUTting new identifiers on one authenticated session (the client
    Python cannot outrun the server with); the identifiers made and the p99. None without
    wrk. wrk numbers each request in its own Lua state; the suffix counts per connection."""
    if shutil.which("wrk") is None:
        return None
    auth = asyncio.run(wrk_session(url, key))
    script = db.parent / "put.lua"
    body = '{"values":[{"index":1,"type":"URL","data":"https://example.com/w"}]}'
    script.write_text(
        "local n = 0\n"
        "local id = tostring(math.random(1, 1e9))\n"
        "request = function()\n  n = n + 1\n"
        f'  return wrk.format("PUT", "/api/handles/{PREFIX}/wrk-" .. id .. "-" .. n,'
        f' {{["Authorization"] = {auth!r}, ["Content-Type"] = "application/json"}},'
        f" {body!r})\nend\n"
    )
    argv = ["wrk", "-t1", "-c64", f"-d{seconds:g}s", "--latency", "-s", str(script), url]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    p99 = re.search(r"\s99%\s+(\S+)", out)[1]
    if "Non-2xx" in out:
        p99 += " (" + re.search(r"Non-2xx or 3xx responses: (\d+)", out)[1] + " not 201)"
    time.sleep(2.0)  # requests in flight when wrk stopped still complete on the server
    made = listed(db)
    return made, p99


def listed(db: Path) -> list[str]:
    """The identifiers wrk made, from the node's own store (read while it serves)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT handle FROM handles WHERE handle LIKE ?", (f"{PREFIX}/wrk-%",))
        return [r[0] for r in rows]


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


def run(workers: int, connections: int, seconds: float, paths: set[str], probe: bool) -> None:
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
                ("binary", "binary (TCP, sessions)", binary_creates, port),
                ("rest", "REST (PUT, sessions)", rest_creates, node.http_url),
                ("rest-new", "REST (PUT, sessions, a new connection each)", rest_new_creates,
                 node.http_url),
            )  # fmt: skip
            for path, name, creates, where in runs:
                if path not in paths:
                    continue
                prober = start_probe(port) if probe else None
                cpu0, t0 = tree_cpu(node.process.pid), time.monotonic()
                own0 = time.process_time()
                done = asyncio.run(creates(where, key, connections, seconds))
                took, cpu = time.monotonic() - t0, tree_cpu(node.process.pid) - cpu0
                own = time.process_time() - own0
                latencies = prober.stop() if prober else None
                made += done
                per, client = (t / max(1, len(done)) * 1e6 for t in (cpu, own))
                print(f"  {name}: {len(done):,} creates in {took:.1f} s = "
                      f"{len(done) / took:,.0f}/s; server CPU {per:,.0f} us "
                      f"per create (the Python clients': {client:,.0f} us)")  # fmt: skip
                if path in REFUSED:
                    print(f"    refused with 401: {REFUSED[path]:,} of "
                          f"{REFUSED[path] + len(done):,} PUTs")  # fmt: skip
                if prober is not None:
                    print(f"    resolved meanwhile: {prober.summary(latencies)}")
            if "wrk" in paths:
                prober = start_probe(port) if probe else None
                cpu0, t0 = tree_cpu(node.process.pid), time.monotonic()
                got = wrk_creates(node.http_url, key, seconds, root / "node.db")
                took, cpu = time.monotonic() - t0, tree_cpu(node.process.pid) - cpu0
                latencies = prober.stop() if prober else None
                if got is None:
                    print("  REST with wrk: wrk is not installed")
                else:
                    done, p99 = got
                    made += done
                    print(f"  REST (PUT, wrk -t1 -c64, one session): {len(done):,} creates in "
                          f"{seconds:g} s = {len(done) / seconds:,.0f}/s, p99 {p99}; server CPU "
                          f"{cpu / max(1, len(done)) * 1e6:,.0f} us per create")  # fmt: skip
                if prober is not None:
                    print(f"    resolved meanwhile: {prober.summary(latencies)}")
            answered = asyncio.run(resolve_all(port, made))
            time.sleep(FLUSH_WAIT)
            registrations, resolutions = counted(root / "node.db")
            print(f"  statistics: registrations {registrations:,} counted / {len(made):,} made"
                  f" ({'exact' if registrations == len(made) else 'NOT EXACT'}); resolutions "
                  f"{resolutions:,} counted / {answered:,} answered"
                  f" ({'exact' if resolutions == answered else 'NOT EXACT'})")  # fmt: skip
        finally:
            stop_node(node)


def start_probe(port: int) -> Prober:
    """Resolutions at a light, steady rate during a write run (``--probe``) of the
    prefix's own handle: answered at once when the loop is free, so their latency shows
    how long the writes hold it. (Not a name under the prefix: that would be counted in
    the statistics the bench checks.)"""
    prober = Prober(port, [f"0.NA/{PREFIX}"])
    prober.start()
    return prober


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--paths", default="binary,rest,wrk", help="of binary, rest, rest-new, wrk")
    ap.add_argument("--probe", action="store_true", help="resolution latency during each run")
    a = ap.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f".venv/bin/python bench/writes.py --workers {a.workers} "
          f"--connections {a.connections} --seconds {a.seconds:g} --paths {a.paths}"
          f"{' --probe' if a.probe else ''}")  # fmt: skip
    for w in (int(x) for x in a.workers.split(",")):
        run(w, a.connections, a.seconds, set(a.paths.split(",")), a.probe)


if __name__ == "__main__":
    main()
