"""Registry work on a large prefix: search pages, counts and a recall by query.

Builds a fresh node (SQLite, in-process), allocates 88.123.4567 (auto-parts), imports N
identifiers in batches of 5,000 per production batch (BATCH B2026xxxx), then times: one
search page (100 identifiers of one batch, with their fields), a count of one batch, a
date-range count over the whole prefix, a recall dry run of one batch and the recall itself
(5,000 identifiers suspended in one transaction, one audit entry). Prints figures; asserts
nothing.

    .venv/bin/python bench/registry_work.py --rows 200000
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import tempfile
import time
from pathlib import Path

from idnode.app import open_node
from idnode.bootstrap import init_node
from idnode.registry.bulk import BulkStates
from idnode.registry.search import Query, Search
from idnode.runtime import system

PREFIX = "88.123.4567"


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["suffix", "PART_NUMBER", "PART_NAME", "MODEL", "BATCH", "SERIAL",
                    "PRODUCTION_DATE", "MANUFACTURER"])  # fmt: skip
        for i in range(rows):
            w.writerow([f"BP{i:08d}", f"BP-{i % 977:04d}", "Brake pad", f"X{i % 7}",
                        f"B2026{i // 5000:04d}", f"S{i:09d}", f"2026-{1 + i % 12:02d}-15",
                        "Fujian Auto Parts"])  # fmt: skip


async def timed(label: str, work):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = await work
    print(f"{label}: {(time.perf_counter() - t0) * 1000:,.1f} ms")
    return out


async def main(rows: int, workdir: Path) -> None:
    cfg = await init_node(workdir / "node", name="bench", prefixes=["88.123"], runtime=system())
    node = await open_node(cfg, runtime=system())
    reg = node.registry
    try:
        contact = {"name": "Lin", "phone": "+86 591 0000000", "email": "lin@example.cn"}
        org = await reg.organisations.apply("b", "Fujian Auto Parts Co., Ltd.",
                                            "91350100M000100Y43", contact)  # fmt: skip
        await reg.organisations.approve("b", org["id"])
        await reg.prefixes.apply("b", PREFIX, org["id"], "auto-parts")
        await reg.prefixes.approve("b", PREFIX)
        await reg.prefixes.allocate("b", PREFIX)
        source = workdir / "parts.csv"
        write_csv(source, rows)
        job = await reg.imports.create(reg.operator, "b", PREFIX, source, "csv", origin="console")
        t0 = time.perf_counter()
        job = await reg.imports.run(job["id"])
        print(f"imported {job['imported']} identifiers in {time.perf_counter() - t0:.1f} s")
        search, bulk = Search(reg), BulkStates(reg)
        one_batch = Query(PREFIX, {"BATCH": "B20260007"})
        page = await timed("search page (100 of one batch, with fields)",
                           search.page(one_batch, limit=100))  # fmt: skip
        n = await timed("count of one batch", search.count(one_batch))
        print(f"  ({len(page['items'])} shown, {n} in the batch)")
        dated = Query(PREFIX, {}, "PRODUCTION_DATE", "2026-03-01", "2026-04-30")
        n = await timed(f"date-range count over {rows:,} identifiers", search.count(dated))
        print(f"  ({n} match)")
        dry = await timed(
            "recall dry run (one batch)",
            bulk.change(None, one_batch, "suspended", "recall", dry_run=True),
        )
        print(f"  ({dry['changes']} would change)")
        done = await timed(
            "recall applied (one batch, one transaction)",
            bulk.change(None, one_batch, "suspended", "recall", dry_run=False),
        )
        print(f"  ({done['changes']} suspended)")
    finally:
        await node.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        asyncio.run(main(a.rows, Path(d)))
