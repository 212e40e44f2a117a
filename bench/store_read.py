"""How fast the SQLite store resolves: get_handle per second over N stored handles.

Reproduce:  .venv/bin/python bench/store_read.py [N=100000] [LOOKUPS=50000]

Prints figures; asserts nothing (timings belong in docs/performance.md, not in tests).
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

from idnode.model import HandleValue
from idnode.store.sqlite import SQLiteStore


def record(i: int) -> list[HandleValue]:
    """A typical record: admin, URL, email, description."""
    ts = 1_700_000_000
    return [
        HandleValue(1, "URL", f"https://example.org/item/{i}".encode(), timestamp=ts),
        HandleValue(2, "EMAIL", b"ops@example.org", timestamp=ts),
        HandleValue(3, "DESC", b"a thing " * 5, timestamp=ts),
        HandleValue(100, "HS_ADMIN", b"\x0f\xf2" + b"\x00" * 30, timestamp=ts),
    ]


async def rate(label: str, store: SQLiteStore, names: list[str], concurrent: bool) -> None:
    start = time.perf_counter()
    if concurrent:
        for i in range(0, len(names), 1000):
            await asyncio.gather(*(store.get_handle(n) for n in names[i : i + 1000]))
    else:
        for n in names:
            await store.get_handle(n)
    dt = time.perf_counter() - start
    print(f"  {label:38s} {len(names) / dt:10,.0f}/s  {dt / len(names) * 1e6:7.1f} us/lookup")


async def main(n: int, lookups: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "bench.db")
        async with SQLiteStore(path) as store:
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

        hits = [f"20.500.1/ITEM{random.randrange(n)}" for _ in range(lookups)]
        misses = [f"20.500.1/none{i}" for i in range(lookups)]
        for inline in (True, False):
            async with SQLiteStore(path, inline_reads=inline) as store:
                print(f"get_handle, inline_reads={inline}, {n:,} handles:")
                await rate("hit, sequential", store, hits, concurrent=False)
                await rate("miss, sequential", store, misses, concurrent=False)
                await rate("hit, 1000 concurrent (gather)", store, hits, concurrent=True)


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(args + [100_000, 50_000][len(args) :])))
