"""The store path's reads alone: random stored-answer reads of a seeded node, in-process.

What a resolution over UDP/TCP (``public_wire_now``, the covering index) and over REST
(``public_answer_now``, the whole row) costs in the SQLite store, without sockets, the
resolver or the event loop's other work: the part that grows with the registry (at ten
million records the file outgrows SQLite's 2 GiB memory map, docs/performance.md round 9).
The event loop turns every 64 reads, as a busy node's does, so each turn opens one read
transaction. ``--cache-kib`` sets the reading connection's page cache (SQLite's default is
2,000 KiB).

    .venv/bin/idnode bench prepare /tmp/bench1m --count 1000000
    .venv/bin/python bench/stored_reads.py /tmp/bench1m --count 1000000
    .venv/bin/python bench/stored_reads.py /tmp/bench10m --count 10000000 --cache-kib 262144

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path

from idnode.runtime import ManualClock
from idnode.store import sqlite as engine
from idnode.wire.public_answer import ENCODER

PREFIX = "20.500.777"  # idnode bench prepare's default
TURN = 64  # reads between two turns of the loop


async def main(node: Path, count: int, lookups: int, passes: int, cache_kib: int) -> None:
    store = engine.SQLiteStore(str(node / "node.db"), clock=ManualClock(), answers=ENCODER)
    await store.open()
    try:
        if cache_kib:  # the reading connection's only
            store._rconn.execute(f"PRAGMA cache_size = -{cache_kib:d}")
        rng = random.Random(16)
        names = [f"{PREFIX}/item-{rng.randrange(count)}" for _ in range(lookups)]
        cache = f"{cache_kib:,} KiB" if cache_kib else "SQLite's default"
        print(f"{count:,} records in {node}, {lookups:,} random reads a pass, page cache {cache}")
        for n in range(passes):
            for label, read in (("wire (UDP/TCP)", store.public_wire_now),
                                ("REST answer", store.public_answer_now)):  # fmt: skip
                started, missing = time.perf_counter(), 0
                for i, name in enumerate(names):
                    if read(name) is None:
                        missing += 1
                    if i % TURN == 0:
                        await asyncio.sleep(0)
                per = (time.perf_counter() - started) / lookups * 1e6
                print(f"pass {n + 1}  {label:15} {per:6.2f} us a read  ({missing} not found)")
    finally:
        await store.close()
    print("reproduce: .venv/bin/python bench/stored_reads.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("node", type=Path, help="a node directory seeded by idnode bench prepare")
    parser.add_argument("--count", type=int, required=True, help="records it was seeded with")
    parser.add_argument("--lookups", type=int, default=200_000)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--cache-kib", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(main(args.node, args.count, args.lookups, args.passes, args.cache_kib))
