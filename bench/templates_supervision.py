"""Costs of issue 20's custom templates and supervision data: bulk import with each record's
template version kept (``record_templates``), re-validating stored records against a new
version, and the parent's check of a child's audit links. Prints figures; asserts nothing.

    .venv/bin/python bench/templates_supervision.py --rows 100000
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import csv
import tempfile
import time
from pathlib import Path

from idnode.app import open_node
from idnode.bootstrap import init_node
from idnode.hierarchy.supervision import judge
from idnode.registry.custom_templates import CustomTemplates
from idnode.runtime import system
from idnode.store.audit_chain import GENESIS, entry_digest

PREFIX = "88.123.4567"
CONTACT = {"name": "Lin", "phone": "+86 591 0000000", "email": "lin@example.cn"}


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["suffix", "PART_NUMBER", "PART_NAME", "MODEL", "BATCH", "SERIAL",
                    "PRODUCTION_DATE", "MANUFACTURER"])  # fmt: skip
        for i in range(rows):
            w.writerow([f"BP{i:08d}", f"BP-{i % 977:04d}", "Brake pad", "BP-X1",
                        f"B{i // 5000}-2026" if i % 2 else f"B{i // 5000}", f"S{i:09d}",
                        "2026-11-02", "Fujian Auto Parts"])  # fmt: skip


async def main(rows: int, links: int, workdir: Path) -> None:
    cfg = await init_node(workdir / "node", name="bench", prefixes=["88.123"], runtime=system())
    node = await open_node(cfg, runtime=system())
    try:
        reg = node.registry
        org = await reg.organisations.apply("b", "Fujian Auto Parts Co., Ltd.",
                                            "91350100M000100Y43", CONTACT)  # fmt: skip
        await reg.organisations.approve("b", org["id"])
        await reg.prefixes.apply("b", PREFIX, org["id"], "auto-parts")
        await reg.prefixes.approve("b", PREFIX)
        await reg.prefixes.allocate("b", PREFIX)
        source = workdir / "parts.csv"
        write_csv(source, rows)
        job = await reg.imports.create(reg.operator, "b", PREFIX, source, "csv")
        t0 = time.perf_counter()
        job = await reg.imports.run(job["id"])
        took = time.perf_counter() - t0
        kept = await reg.store.query_value("SELECT count(*) FROM {s}.record_templates")
        what = "template version kept per record" if kept else "no refs"
        print(
            f"bulk import ({what}): {job['imported']} identifiers"
            f" in {took:.1f} s = {job['imported'] / took:,.0f}/s ({kept} refs kept)"
        )

        templates = CustomTemplates(reg)
        doc = copy.deepcopy(reg.catalog.get("auto-parts@1").describe())
        doc["schema"]["properties"]["BATCH"]["pattern"] = "^B[0-9]+-[0-9]{4}$"
        await templates.add("b", {"id": "auto-parts", "name": "v2", "schema": doc["schema"]})
        await templates.publish("b", "auto-parts@2")
        t0 = time.perf_counter()
        report = await templates.validate("auto-parts@2", PREFIX, min(rows, 10_000))
        took = time.perf_counter() - t0
        print(
            f"re-validate against auto-parts@2: {report['checked']} records in {took:.2f} s"
            f" = {report['checked'] / took:,.0f}/s ({len(report['failed'])} would fail)"
        )
    finally:
        await node.close()

    prev, chain = GENESIS, []
    for seq in range(1, links + 1):
        d = entry_digest(prev, seq, 1_793_577_600 + seq, "op", "handle.create", f"h{seq}", "a", "b")
        chain.append([seq, 1_793_577_600 + seq, "op", "handle.create", f"h{seq}", "a", "b", d])
        prev = d
    t0 = time.perf_counter()
    verdict, _, _ = judge((0, GENESIS), {"seq": links, "digest": prev, "since": 0, "links": chain})
    took = time.perf_counter() - t0
    print(
        f"parent's check of {links} audit links: {verdict} in {took:.2f} s"
        f" = {links / took:,.0f} links/s"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--links", type=int, default=10_000)
    ap.add_argument(
        "--no-refs",
        action="store_true",
        help="keep no template refs (the cost of keeping them, by difference)",
    )
    args = ap.parse_args()
    if args.no_refs:
        from idnode.registry import record_templates

        record_templates.bind = lambda rows: ()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(args.rows, args.links, Path(tmp)))
