"""The governance workflow counts the same on any date: one clock reaches every part.

Issue 12: the monthly report counted registrations from the store's transaction log, which
the store stamped with the machine's clock while the registry ran on the test's; the report
for November came out empty once the real month was December. Here the whole node runs on
one clock set to awkward dates (and once on the real clock), and the counts must not move.
"""

from __future__ import annotations

import datetime as dt

import pytest

from idnode.runtime import ManualClock, Runtime, SeededRandom, system
from idnode.service.resolve import ResolutionQuery

from .conftest import node_env, row


def at(text: str) -> Runtime:
    when = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
    return Runtime(ManualClock(when.timestamp()), SeededRandom(7))


DATES = {
    "month end": "2026-11-30T23:59:59",
    "year end": "2026-12-31T23:59:59",
    "leap day": "2028-02-29T12:00:00",
    "new year": "2027-01-01T00:00:00",
}


@pytest.mark.parametrize("runtime", [*(at(d) for d in DATES.values()), system()],
                         ids=[*DATES, "real clock"])  # fmt: skip
async def test_the_monthly_report_counts_what_happened_that_month(tmp_path, runtime):
    month = dt.datetime.fromtimestamp(runtime.clock(), dt.UTC).strftime("%Y-%m")
    async with node_env(tmp_path, runtime) as env:
        await env.allocated()
        reg = env.reg
        source = env.csv([row(i) for i in range(5)])
        job = await reg.imports.create(reg.operator, "c", "88.123.4567", source, "csv")
        await reg.imports.run(job["id"])
        for _ in range(3):
            await env.node.resolver.resolve(ResolutionQuery("88.123.4567/P00001"))
        report = await reg.stats.monthly_report(month)
    (p,) = report["prefixes"]
    assert (p["registrations"], p["resolutions"], p["identifiers"]) == (5, 3, 5)
    assert report["month"] == month


async def test_the_store_log_and_the_registry_stamp_the_same_time(tmp_path):
    """Both halves of a write carry the node's clock, not the machine's."""
    runtime = at("2030-06-15T08:00:00")
    async with node_env(tmp_path, runtime) as env:
        await env.allocated()
        stamps = {t.timestamp for t in await env.node.store.transactions()}
        assert stamps == {int(runtime.clock())}
