"""Bulk import parses on a thread (small files) or in a child process (big ones): both must
write the same records, report the same rejects and resume the same way."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from idnode.model import HS_ADMIN, HandleValue
from idnode.registry.prefixes import RECORD_RIGHTS

from .conftest import FIELDS, row

MODES = {"thread": 10**12, "process": 0}  # Imports.parse_process_min_bytes


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest, env) -> str:
    env.reg.imports.parse_process_min_bytes = MODES[request.param]
    return request.param


HEADER = [*FIELDS, "SERIAL"]


def write(env, rows: list[list[str]]) -> Path:
    path = env.tmp / "rows.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def expected(env, org: dict, cells: list[str]) -> list[HandleValue]:
    """The record the original (one HandleValue per field) import path wrote for a row."""
    reg = env.reg
    now = int(env.clock())
    tmpl = reg.catalog.get("auto-parts")
    values = [
        HandleValue(tmpl.index_of(name), name, text.encode(), timestamp=now)
        for name, text in zip(HEADER[1:], cells[1:], strict=True)
        if text
    ]
    admin = reg.admin_value(reg.accounts.group_handle(org["credit_code"]), RECORD_RIGHTS)
    return [
        *sorted(values, key=lambda v: v.index),
        HandleValue(100, HS_ADMIN, admin, timestamp=now),
    ]


async def test_records_and_rejects(env, mode: str) -> None:
    org = await env.allocated()
    reg = env.reg
    rows = [[*row(1), "S-1"], [*row(2, BATCH=""), ""], row(3)[:4],
            [*row(4, PRODUCTION_DATE="2026-02-30"), ""], [*row(1), ""], [*row(5), ""],
            [*row(6, MANUFACTURER="O'Brien \"Parts\" 汽车"), "S-6"], [*row(7), "S-7"]]  # fmt: skip
    src = write(env, rows)
    job = await reg.imports.create(reg.operator, "console", "88.123.4567", src, "csv", batch_size=3)
    job = await reg.imports.run(job["id"])
    assert (job["state"], job["imported"], job["rejected"]) == ("done", 4, 4), job
    assert (await reg.imports.rejects_csv(job["id"])).splitlines() == [
        "row,field,message",
        "3,BATCH,required field is missing",
        '4,row,"has 4 cells, header has 8"',
        "5,PRODUCTION_DATE,is not a valid date",
        "6,suffix,repeats the suffix of row 2",
    ]
    for cells in (rows[0], rows[5], rows[6], rows[7]):
        got = await reg.store.get_handle(f"88.123.4567/{cells[0]}")
        assert got == expected(env, org, cells)
    log = [t.handle for t in await reg.store.transactions(0, 10_000) if t.action == "load"]
    assert sorted(log) == [f"88.123.4567/P{i:05d}" for i in (1, 5, 6, 7)]


async def test_resume_without_duplicates(env, mode: str) -> None:
    await env.allocated()
    reg = env.reg
    src = env.csv([row(i) for i in range(10)])
    job = await reg.imports.create(reg.operator, "console", "88.123.4567", src, "csv", batch_size=3)
    commit = reg.imports._commit

    async def crash_on_the_second_batch(job_row, who, batch, builder):
        if batch.number == 1:
            raise KeyboardInterrupt  # the process dies here
        await commit(job_row, who, batch, builder)

    reg.imports._commit = crash_on_the_second_batch
    with pytest.raises(KeyboardInterrupt):
        await reg.imports.run(job["id"])
    reg.imports._commit = commit
    job = await reg.imports.run(job["id"])
    assert (job["state"], job["imported"], job["rejected"]) == ("done", 10, 0)
    assert await reg.store.count_handles("88.123.4567") == 10
    loads = [t for t in await reg.store.transactions(0, 10_000) if t.action == "load"]
    assert len(loads) == 10


async def test_a_file_that_breaks_mid_way_fails_the_job(env, mode: str) -> None:
    await env.allocated()
    reg = env.reg
    src = env.csv([row(i) for i in range(500)])  # the bad bytes lie beyond the header's read
    with src.open("ab") as fh:
        fh.write(b"P9,\xff\xfe,not utf-8\n")
    job = await reg.imports.create(reg.operator, "console", "88.123.4567", src, "csv", batch_size=2)
    job = await reg.imports.run(job["id"])
    assert job["state"] == "failed"
    # an input error, named as one (issue 15: it was "internal error: UnicodeDecodeError");
    # text is decoded a buffer at a time, so the row named is where decoding stopped
    assert job["error"].startswith("row ") and "not UTF-8 text" in job["error"], job["error"]
    assert int(job["error"].split(":")[0].removeprefix("row ")) <= 502
    # nothing partial: only whole batches were written, each logged once, no P9 record
    count = await reg.store.count_handles("88.123.4567")
    assert count == job["imported"] and count % 2 == 0, (count, job)
    loads = [t for t in await reg.store.transactions(0, 10_000) if t.action == "load"]
    assert len(loads) == count
    assert await reg.store.get_handle("88.123.4567/P9") is None
