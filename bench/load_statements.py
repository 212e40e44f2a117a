"""A SQLite bulk load's writer-thread work, statement by statement (issue 16).

``bench/import_bulk.py`` times a whole import (parse process, registry, store); this times
only what ``SQLiteStore.load_rows`` runs on the writer thread, one table at a time, for
batches of records of eight values (about 100 bytes of data each, so a stored answer of
about 850 bytes of wire and 1,500 of JSON, as the auto-parts template's): the preparation
on a worker thread (checks, keys, encoded answers), then each statement of the batch's
transaction, the COMMIT, and the checkpoint that copies the batch into the file (its two
fsyncs included: the disk's speed shows there). Every figure is µs a record.
``--without-wire-index`` drops the covering index of the stored answers' wire (migration
10), to show what keeping it costs a load.

    .venv/bin/python bench/load_statements.py [--batches 10] [--rows 10000]
        [--without-wire-index]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from idnode.model import HandleValue
from idnode.runtime import ManualClock
from idnode.store import sqlite as engine
from idnode.store.base import RowGroup
from idnode.wire.public_answer import ENCODER

TYPES = ("URL", "DESC", "EMAIL", "item.sn", "item.model", "item.maker", "item.date", "item.batch")
LAYOUT = tuple(HandleValue(n, t, b"", timestamp=1) for n, t in enumerate(TYPES, 1))
WARM = 2  # batches not reported (the file's first pages)
WIDTHS = (8, 8, 8, 8, 6, 7, 6)  # prepare, handles, answers, values, log, COMMIT, copy


def batch_rows(batch: int, rows: int) -> list[tuple[str, tuple[bytes, ...]]]:
    return [
        (
            f"88.123.4567/p-{batch:04d}-{n:07d}",
            tuple(f"value-{j}-{batch}-{n}-".encode() * 6 for j in range(len(LAYOUT))),
        )
        for n in range(rows)
    ]


async def main(batches: int, rows: int, without_wire_index: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = engine.SQLiteStore(str(Path(tmp) / "node.db"), clock=ManualClock(), answers=ENCODER)
        await store.open()
        conn = store._wconn  # the writer's connection: this bench is its only user
        if without_wire_index:
            conn.execute("DROP INDEX public_answers_wire")
        note = " (without the wire index)" if without_wire_index else ""
        print(f"SQLite {sqlite3.sqlite_version}, {batches} batches of {rows:,} records;"
              f" µs a record{note}")  # fmt: skip
        print(f"{'batch':>5} {'prepare':>8} {'handles':>8} {'answers':>8} {'values':>8}"
              f" {'log':>6} {'COMMIT':>7} {'copy':>6}")  # fmt: skip
        try:
            for batch in range(batches):
                times = [time.perf_counter()]
                groups = [RowGroup(LAYOUT, batch_rows(batch, rows))]
                (group,) = store._prepare_load(groups, False, 1)
                times.append(time.perf_counter())
                conn.execute("BEGIN IMMEDIATE")
                engine._insert_handles(conn, group.handle_rows, False)
                times.append(time.perf_counter())
                conn.executemany(engine._PUT_ANSWER, group.answer_rows)
                times.append(time.perf_counter())
                conn.executemany(group.values_sql, group.value_rows)
                times.append(time.perf_counter())
                conn.executemany(group.log_sql, group.log_rows)
                times.append(time.perf_counter())
                conn.execute("COMMIT")
                times.append(time.perf_counter())
                engine._passive_checkpoint(conn)
                times.append(time.perf_counter())
                if batch >= WARM:
                    steps = [(b - a) / rows * 1e6 for a, b in zip(times, times[1:], strict=False)]
                    print(f"{batch:>5} " + " ".join(
                        f"{s:>{w}.1f}" for s, w in zip(steps, WIDTHS, strict=True)))  # fmt: skip
        finally:
            await store.close()
    print("reproduce: .venv/bin/python bench/load_statements.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--without-wire-index", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.batches, args.rows, args.without_wire_index))
