"""Bulk registration throughput: identifiers/s from a CSV into the SQLite store.

Builds a fresh node (``idnode init`` in-process), runs the governance workflow (organisation
approved, prefix 88.123.4567 allocated with the auto-parts template), writes N auto-parts rows
to CSV and times ``Imports.run`` (parse, template check, build, ``store.load`` per batch,
progress + audit per batch). Prints figures; asserts nothing.

    .venv/bin/python bench/import_bulk.py --rows 1000000
    .venv/bin/python bench/import_bulk.py --rows 1000000 \
        --store 'postgresql://postgres@127.0.0.1:5432/test?schema=bench_import'

With ``--store`` the node keeps its records in that store (a PostgreSQL schema must not
exist yet, or be empty: the bench drops it afterwards). With ``--serve`` the node is served
by ``idnode serve --workers 1`` during the import while another process resolves its
identifiers over UDP (200 a second, one at a time) and the latencies are reported. The job
is made as ``idnode import`` makes it (origin "console": a serving node resumes only API
jobs, so it does not take this one over).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.conftest helpers

from tests.conftest import free_port, serve_node, stop_node  # noqa: E402
from udp_probe import Prober  # noqa: E402

from idnode.app import open_node
from idnode.bootstrap import init_node
from idnode.runtime import system


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["suffix", "PART_NUMBER", "PART_NAME", "MODEL", "BATCH", "SERIAL",
                    "PRODUCTION_DATE", "MANUFACTURER"])  # fmt: skip
        for i in range(rows):
            w.writerow([f"BP{i:08d}", f"BP-{i % 977:04d}", "Brake pad", "BP-X1",
                        f"B2026{i // 5000:04d}", f"S{i:09d}", "2026-11-02",
                        "Fujian Auto Parts"])  # fmt: skip


async def main(rows: int, batch: int, workdir: Path, store: str, serve: bool) -> None:
    ports = {}
    if serve:
        udp_tcp, http = free_port(), free_port()
        ports = {"udp_port": udp_tcp, "tcp_port": udp_tcp, "http_port": http}
    cfg = await init_node(
        workdir / "node", name="bench", prefixes=["88.123"], runtime=system(), store_url=store,
        **ports,
    )  # fmt: skip
    node = await open_node(cfg, runtime=system())
    try:
        await _import(node, rows, batch, workdir, ports)
    finally:
        await node.close()
        if store.startswith("postgres"):
            await _drop_schema(store)


async def _drop_schema(url: str) -> None:
    import asyncpg

    base, _, query = url.partition("?")
    schema = dict(p.split("=", 1) for p in query.split("&") if "=" in p).get("schema")
    if schema:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def _import(node, rows: int, batch: int, workdir: Path, ports: dict[str, int]) -> None:
    reg = node.registry
    org = await reg.organisations.apply("bench", "Fujian Auto Parts Co., Ltd.",
                                        "91350100M000100Y43",
                                        {"name": "Lin", "phone": "+86 591 0000000",
                                         "email": "lin@example.cn"})  # fmt: skip
    await reg.organisations.approve("bench", org["id"])
    await reg.prefixes.apply("bench", "88.123.4567", org["id"], "auto-parts")
    await reg.prefixes.approve("bench", "88.123.4567")
    await reg.prefixes.allocate("bench", "88.123.4567")
    source = workdir / "parts.csv"
    t0 = time.perf_counter()
    write_csv(source, rows)
    print(f"wrote {rows} rows ({source.stat().st_size / 1e6:.0f} MB) in "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    job = await reg.imports.create(reg.operator, "bench", "88.123.4567", source, "csv",
                                   batch_size=batch, origin="console")  # fmt: skip
    served = prober = None
    if ports:  # the node serves meanwhile, and a resolver measures its answers
        served = serve_node(workdir / "node", ports["udp_port"], ports["http_port"], "88.123")
        names = [f"88.123.4567/BP{i:08d}" for i in range(0, rows, max(1, rows // 1000))]
        prober = Prober(ports["udp_port"], names)
        prober.start()
    t0, cpu0 = time.perf_counter(), os.times()
    try:
        job = await reg.imports.run(job["id"])
        took, cpu1 = time.perf_counter() - t0, os.times()
    finally:
        if prober is not None:
            latencies = prober.stop()
        if served is not None:
            stop_node(served)
    if prober is not None:
        print(f"served meanwhile (idnode serve --workers 1): {prober.summary(latencies)}")
    assert job["state"] == "done", job
    print(f"imported {job['imported']} identifiers (rejected {job['rejected']}) in {took:.1f} s:"
          f" {job['imported'] / took:,.0f} identifiers/s (batch {batch})")  # fmt: skip
    # CPU seconds per process: on a busy machine the wall-clock figure hides whether the
    # import or its neighbours were short of a core; the parse process is a child (it is
    # only counted once reaped, i.e. for files big enough to be parsed in a process)
    main_cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    child_cpu = cpu1.children_user + cpu1.children_system
    child_cpu -= cpu0.children_user + cpu0.children_system
    print(f"CPU: main process {main_cpu:.1f} s (store writer, checkpoints, registry), parse "
          f"process {child_cpu:.1f} s; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")  # fmt: skip
    db = workdir / "node" / "node.db"
    if db.exists():
        print(f"store file {db.stat().st_size / 1e6:.0f} MB")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp)")
    ap.add_argument("--store", default="", help="store URL (default: SQLite in the node)")
    ap.add_argument(
        "--serve", action="store_true",
        help="idnode serve the node during the import and report its resolution latency",
    )  # fmt: skip
    a = ap.parse_args()
    if a.dir is not None:
        a.dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(main(a.rows, a.batch, a.dir, a.store, a.serve))
    else:
        with tempfile.TemporaryDirectory() as d:
            asyncio.run(main(a.rows, a.batch, Path(d), a.store, a.serve))
