"""How fast a store loads and resolves: get_handle per second over N stored handles.

Reproduce:  .venv/bin/python bench/store_read.py [N=100000] [LOOKUPS=50000]
            .venv/bin/python bench/store_read.py [N] [LOOKUPS] --engine postgres [--dsn DSN]

The PostgreSQL run uses a throw-away schema ``bench_<pid>`` in the database of ``--dsn``
(default: trust auth on 127.0.0.1, database ``test``) and drops it at the end.

Prints figures; asserts nothing (timings belong in docs/performance.md, not in tests).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

from idnode.model import HandleValue
from idnode.runtime import SystemClock
from idnode.store.base import Store
from idnode.store.sqlite import SQLiteStore

PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def record(i: int) -> list[HandleValue]:
    """A typical record: admin, URL, email, description."""
    ts = 1_700_000_000
    return [
        HandleValue(1, "URL", f"https://example.org/item/{i}".encode(), timestamp=ts),
        HandleValue(2, "EMAIL", b"ops@example.org", timestamp=ts),
        HandleValue(3, "DESC", b"a thing " * 5, timestamp=ts),
        HandleValue(100, "HS_ADMIN", b"\x0f\xf2" + b"\x00" * 30, timestamp=ts),
    ]


async def rate(label: str, store: Store, names: list[str], concurrent: bool) -> None:
    start = time.perf_counter()
    if concurrent:
        for i in range(0, len(names), 1000):
            await asyncio.gather(*(store.get_handle(n) for n in names[i : i + 1000]))
    else:
        for n in names:
            await store.get_handle(n)
    dt = time.perf_counter() - start
    print(f"  {label:38s} {len(names) / dt:10,.0f}/s  {dt / len(names) * 1e6:7.1f} us/lookup")


async def fill(store: Store, n: int) -> None:
    """Load n handles in loads of 10,000, then time single creates."""
    start = time.perf_counter()
    for i in range(0, n, 10_000):
        top = min(i + 10_000, n)
        await store.load((f"20.500.1/item{j}", record(j)) for j in range(i, top))
    dt = time.perf_counter() - start
    print(f"load: {n:,} handles x 4 values in {dt:.2f}s ({n / dt:,.0f} handles/s)")

    start = time.perf_counter()
    for i in range(1000):
        await store.create_handle(f"20.500.1/single{i}", record(i))
    dt = time.perf_counter() - start
    print(f"create_handle, one at a time: {1000 / dt:,.0f}/s")

    start = time.perf_counter()
    await asyncio.gather(*(store.create_handle(f"20.500.1/par{i}", record(i)) for i in range(1000)))
    dt = time.perf_counter() - start
    print(f"create_handle, 1000 concurrent (gather): {1000 / dt:,.0f}/s")


async def reads(store: Store, label: str, n: int, lookups: int) -> None:
    hits = [f"20.500.1/ITEM{random.randrange(n)}" for _ in range(lookups)]
    misses = [f"20.500.1/none{i}" for i in range(lookups)]
    print(f"get_handle, {label}, {n:,} handles:")
    await rate("hit, sequential", store, hits, concurrent=False)
    await rate("miss, sequential", store, misses, concurrent=False)
    await rate("hit, 1000 concurrent (gather)", store, hits, concurrent=True)


async def bench_sqlite(n: int, lookups: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.db")
        async with SQLiteStore(path, clock=SystemClock()) as store:
            await fill(store, n)
        for inline in (True, False):
            async with SQLiteStore(path, inline_reads=inline, clock=SystemClock()) as store:
                await reads(store, f"sqlite, inline_reads={inline}", n, lookups)


async def bench_postgres(n: int, lookups: int, dsn: str, pool: int) -> None:
    from idnode.store.postgres import PostgresStore

    schema = f"bench_{os.getpid()}"
    store = PostgresStore(dsn, schema=schema, max_size=pool, clock=SystemClock())
    try:
        async with store:
            await fill(store, n)
            await reads(store, f"postgres, pool of {pool}", n, lookups)
    finally:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000, help="handles stored")
    parser.add_argument("lookups", nargs="?", type=int, default=50_000, help="reads per run")
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--dsn", default=PG_DSN, help="PostgreSQL server (--engine postgres)")
    parser.add_argument("--pool", type=int, default=10, help="PostgreSQL pool size")
    args = parser.parse_args()
    if args.engine == "sqlite":
        asyncio.run(bench_sqlite(args.n, args.lookups))
    else:
        asyncio.run(bench_postgres(args.n, args.lookups, args.dsn, args.pool))


if __name__ == "__main__":
    main()
