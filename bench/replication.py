"""Replication figures (issue 17, docs/replication.md): lag under a write load, catch-up rate
from the log and from a dump, failover time.

Serves a throw-away primary and a mirror (one worker each) on 127.0.0.1 and measures:

* lag: ``--writers`` authenticated sessions create records on the primary for
  ``--seconds`` at up to ``--rate`` writes/s in all; every 100 ms the newest acknowledged
  record is polled on the mirror until it resolves (the lag of that write);
* governance: after the load, until the mirror's audit chain head is the primary's (the
  idnode extension, opcode 1100, pulled once a second under load);
* catch-up: the mirror is stopped, ``--backlog`` records are bulk-loaded into the primary
  (``idnode load``: one log row each), the mirror is started again and the time until the
  last one resolves gives the log's apply rate; a new mirror then dumps everything;
* failover: ``kill -9`` of the primary, ``idnode promote`` of the stopped mirror, its start,
  until the first write on it is acknowledged.

    .venv/bin/python bench/replication.py [--rate 1000] [--seconds 10] [--writers 8]
                                          [--backlog 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.conftest helpers

from tests.conftest import IDNODE, free_port, serve_node, stop_node  # noqa: E402

from idnode.client.admin import AdminClient  # noqa: E402
from idnode.client.resolve import ClientTimeout, request_udp, resolution_request  # noqa: E402
from idnode.codes import ResponseCode  # noqa: E402
from idnode.crypto.keys import load_private_key_pem  # noqa: E402
from idnode.model import HandleValue  # noqa: E402

PREFIX = "20.500.172"
OPERATOR = f"300:0.NA/{PREFIX}"
URL = HandleValue(1, "URL", b"https://example.com/bench")


def idnode(*args: str) -> None:
    subprocess.run([*IDNODE, *args], check=True, capture_output=True, text=True)


async def resolves(port: int, handle: str) -> bool:
    try:
        reply = await request_udp(
            "127.0.0.1", port, resolution_request(handle), timeout=0.5, attempts=1
        )
    except (ClientTimeout, OSError):
        return False
    return reply.header.response_code == ResponseCode.SUCCESS


async def until_resolves(port: int, handle: str, limit: float = 120.0) -> float:
    start = time.monotonic()
    while not await resolves(port, handle):
        if time.monotonic() - start > limit:
            raise RuntimeError(f"{handle} never reached the mirror")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


async def load_and_lag(port: int, mirror: int, key, rate: float, seconds: float, writers: int):
    acked: list[tuple[float, str]] = []
    stop_at = time.monotonic() + seconds
    per_writer = rate / writers

    async def writer(w: int) -> None:
        async with AdminClient("127.0.0.1", port, "tcp", OPERATOR, key) as c:
            await c.open_session()
            n, t0 = 0, time.monotonic()
            while time.monotonic() < stop_at:
                handle = f"{PREFIX}/load-{w}-{n}"
                await c.create_handle(handle, [URL])
                acked.append((time.monotonic(), handle))
                n += 1
                ahead = t0 + n / per_writer - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)

    lags: list[float] = []

    async def sampler() -> None:
        while time.monotonic() < stop_at:
            await asyncio.sleep(0.1)
            if acked:
                at, handle = acked[-1]
                await until_resolves(mirror, handle)
                lags.append(time.monotonic() - at)

    start = time.monotonic()
    await asyncio.gather(sampler(), *(writer(w) for w in range(writers)))
    took = time.monotonic() - start
    drain = await until_resolves(mirror, acked[-1][1])
    return len(acked) / took, sorted(lags), drain


def audit_head(db: Path) -> str:
    """The audit chain's head a node keeps in ``meta`` (read-only, beside the server)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        row = c.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()
    return row[0] if row else ""


def governance_drain(primary_db: Path, mirror_db: Path, limit: float = 120.0) -> float:
    """Seconds until the mirror's audit head is the primary's (governance replicated)."""
    start, wanted = time.monotonic(), audit_head(primary_db)
    while audit_head(mirror_db) != wanted:
        if time.monotonic() - start > limit:
            raise RuntimeError("the audit chain never reached the mirror")
        time.sleep(0.01)
    return time.monotonic() - start


def ports(pair: tuple[int, int]) -> tuple[str, ...]:
    udp_tcp, http = str(pair[0]), str(pair[1])
    return ("--udp-port", udp_tcp, "--tcp-port", udp_tcp, "--http-port", http)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--backlog", type=int, default=20000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        p_ports, m_ports = (free_port(), free_port()), (free_port(), free_port())
        idnode("init", str(root / "p"), "--prefix", PREFIX, *ports(p_ports))
        key_file = root / "p" / "admin_privkey.pem"
        mirror_args = ("--role", "mirror", "--primary", f"127.0.0.1:{p_ports[0]}",
                       "--identity", OPERATOR, "--key", str(key_file))  # fmt: skip
        idnode("init", str(root / "m"), *ports(m_ports), *mirror_args)
        key = load_private_key_pem(key_file.read_bytes())
        primary = serve_node(root / "p", *p_ports, PREFIX)
        mirror = serve_node(root / "m", *m_ports, PREFIX)
        try:
            achieved, lags, drain = asyncio.run(
                load_and_lag(p_ports[0], m_ports[0], key, args.rate, args.seconds, args.writers)
            )
            median, p99 = lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.99))]
            governance = drain + governance_drain(root / "p" / "node.db", root / "m" / "node.db")

            stop_node(mirror)
            records = root / "backlog.jsonl"
            with records.open("w") as f:
                for n in range(args.backlog):
                    values = [{"index": 1, "type": "URL", "data": f"https://example.com/{n}"}]
                    f.write(json.dumps({"handle": f"{PREFIX}/bulk-{n}", "values": values}) + "\n")
            idnode("load", str(root / "p"), str(records))
            start = time.monotonic()
            mirror = serve_node(root / "m", *m_ports, PREFIX)
            last = f"{PREFIX}/bulk-{args.backlog - 1}"
            catch_up = time.monotonic() - start + asyncio.run(until_resolves(m_ports[0], last))

            n_ports = (free_port(), free_port())
            idnode("init", str(root / "n"), *ports(n_ports), *mirror_args)
            start = time.monotonic()
            fresh = serve_node(root / "n", *n_ports, PREFIX)
            dump = time.monotonic() - start + asyncio.run(until_resolves(n_ports[0], last))
            stop_node(fresh)

            killed = time.monotonic()
            primary.process.kill()
            primary.process.wait()
            stop_node(mirror)
            idnode("promote", str(root / "m"))
            mirror = serve_node(root / "m", *m_ports, PREFIX)

            async def first_write() -> None:
                async with AdminClient("127.0.0.1", m_ports[0], "tcp", OPERATOR, key) as c:
                    await c.create_handle(f"{PREFIX}/after-failover", [URL])

            asyncio.run(first_write())
            failover = time.monotonic() - killed
        finally:
            for node in (primary, mirror):
                if node.process.poll() is None:
                    stop_node(node)
    total = args.backlog + int(achieved * args.seconds)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"write load: {achieved:,.0f} writes/s acknowledged by the primary "
        f"({args.writers} sessions, asked {args.rate:,.0f}/s for {args.seconds:g} s)"
    )
    print(
        f"replication lag under that load: median {median * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms over {len(lags)} samples; drained {drain * 1000:.0f} ms "
        "after the load stopped (pull interval 200 ms)"
    )
    print(
        f"governance: the mirror's audit chain head equals the primary's {governance * 1000:.0f}"
        " ms after the load stopped (opcode 1100, once a second while the log is busy)"
    )
    print(
        f"catch-up from the log: {args.backlog:,} transactions in {catch_up:.1f} s "
        f"({args.backlog / catch_up:,.0f} txn/s, mirror start included)"
    )
    print(
        f"catch-up by dump (new mirror): {total:,} records in {dump:.1f} s "
        f"({total / dump:,.0f} records/s, start included)"
    )
    print(
        f"failover: {failover:.1f} s from kill -9 of the primary to the first write "
        "acknowledged by the promoted mirror (stop, promote, start)"
    )
    print("reproduce: .venv/bin/python bench/replication.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
