"""Retention figures (issue 17, docs/replication.md): how long pruning the logs takes and how
long its longest batch holds the write lock, on SQLite and PostgreSQL.

Fills a throw-away store with ``--entries`` transaction-log rows (a bulk load: one row per
record) and as many governance changes (``repl_changes``, through captured ``meta`` writes),
all stamped at one fixed time, then prunes them 31 days later with a 30-day retention
(``replication.retention.prune``, batches of ``--batch``) and prints the total time, the
number of batches and the longest one (the time its store transaction took, i.e. the
longest a writer could have waited behind it). A writer creating records throughout the
prune reports the longest any of its writes took.

    .venv/bin/python bench/prune.py [--entries 100000] [--batch 2000]
                                    [--engine sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from idnode.model import HandleValue
from idnode.replication.retention import DAY, prune
from idnode.service.replication import set_meta
from idnode.store.effects import Effects
from idnode.store.postgres import PostgresStore
from idnode.store.sqlite import SQLiteStore

PG_DSN = os.environ.get("IDNODE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_prune"
T0 = 1_700_000_000.0
URL = HandleValue(1, "URL", b"https://example.com/prune")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


async def fill(store, entries: int) -> None:
    await store.load((f"20.500.9/r{i}", [URL]) for i in range(entries))
    for start in range(0, entries, 5000):
        statements = tuple(
            set_meta(f"bench.k{i}", str(i)) for i in range(start, min(entries, start + 5000))
        )
        await store.apply(Effects(statements=statements), logged=False)


async def run(engine: str, entries: int, batch: int) -> str:
    clock = Clock()
    if engine == "sqlite":
        tmp = tempfile.TemporaryDirectory()
        store = SQLiteStore(str(Path(tmp.name) / "node.db"), clock=clock)
    else:
        import asyncpg

        conn = await asyncpg.connect(PG_DSN)
        await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await conn.close()
        store = PostgresStore(PG_DSN, clock=clock, schema=SCHEMA, max_size=4)
    await store.open()
    try:
        await fill(store, entries)
        await prune(store, now=clock.now, keep_days=30)  # marks the changes at T0
        clock.now = T0 + 31 * DAY
        await store.create_handle("20.500.9/recent", [URL])
        worst_write, stop = 0.0, asyncio.Event()

        async def writer() -> None:
            nonlocal worst_write
            n = 0
            while not stop.is_set():
                began = time.monotonic()
                await store.create_handle(f"20.500.9/w{n}", [URL])
                worst_write = max(worst_write, time.monotonic() - began)
                n += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(writer())
        began = time.monotonic()
        report = await prune(
            store, now=clock.now, keep_days=30, batch=batch, monotonic=time.monotonic
        )
        took = time.monotonic() - began
        stop.set()
        await task
        assert report is not None
        return (
            f"{engine}: pruned {report.transactions:,} log rows and {report.changes:,} changes"
            f" in {took:.2f} s ({report.batches} batches of up to {batch:,});"
            f" longest batch {report.longest_batch * 1000:.1f} ms;"
            f" a concurrent writer's slowest write {worst_write * 1000:.1f} ms"
        )
    finally:
        await store.close()
        if engine == "postgres":
            import asyncpg

            conn = await asyncpg.connect(PG_DSN)
            await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--engine", choices=("sqlite", "postgres", "both"), default="both")
    args = ap.parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"machine: {machine}, Python {platform.python_version()}")
    engines = ("sqlite", "postgres") if args.engine == "both" else (args.engine,)
    for engine in engines:
        print(asyncio.run(run(engine, args.entries, args.batch)), flush=True)
    command = f"--entries {args.entries} --batch {args.batch}"
    print("reproduce: .venv/bin/python bench/prune.py " + command)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
