"""Statistics: registrations and resolutions per prefix and per day, Prometheus metrics, and
the monthly report a secondary node sends its top-level node.

* Registrations are counted by the write that registers (``policy.py``), in its own
  transaction: exact with any number of workers or hosts, never lost or doubled by a crash.
* Resolutions are counted in memory (``states.ResolutionGate``: one dict update on the hot
  path, no I/O) and
  added to ``stats_daily`` by ``flush`` every few seconds, as increments, so every worker's
  counts add up; counts not yet flushed when a process is killed are lost (at most one
  interval's worth).
* ``/metrics`` reads the table plus the unflushed counters when it is scraped
  (``refresh`` before ``render``: the Prometheus collector itself cannot wait for a query).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest

from idnode.model import handle_key
from idnode.registry.errors import RegistryError
from idnode.store.effects import Count, Effects
from idnode.store.governance import day_of

if TYPE_CHECKING:
    from idnode.registry.service import Registry

log = logging.getLogger(__name__)
FLUSH_INTERVAL = 5.0


class Stats:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.gate = reg.gate  # counts resolutions in memory (states.ResolutionGate)
        self.metrics = CollectorRegistry(auto_describe=False)
        self._snapshot: dict[str, Any] = {"totals": [], "orgs": [], "prefixes": []}
        self.metrics.register(_Collector(self))
        # what other collectors in ``metrics`` read before a scrape (their collect() is sync)
        self.refreshers: list[Callable[[], Awaitable[None]]] = []
        self._task: asyncio.Task | None = None

    @property
    def pending(self) -> dict[str, int]:
        return self.gate.pending

    async def flush(self) -> None:
        """Add the resolutions counted since the last flush to ``stats_daily``."""
        pending = self.gate.take()
        if not pending:
            return
        today = day_of(self.reg.clock())
        try:
            counts = tuple(Count(p, resolutions=n, day=today) for p, n in pending.items())
            await self.reg.store.apply(Effects(counts=counts), logged=False)
        except BaseException:
            for p, n in pending.items():  # keep them for the next flush
                self.gate.pending[p] = self.gate.pending.get(p, 0) + n
            raise

    def start(self, interval: float = FLUSH_INTERVAL) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.flush()
                except Exception:  # keep counting; the next flush retries
                    log.exception("statistics flush failed")

        self._task = asyncio.get_running_loop().create_task(loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self.flush()

    async def daily(
        self, prefix: str | None = None, start: str = "", end: str = "9999"
    ) -> list[dict[str, Any]]:
        """Rows (day, prefix, registrations, resolutions), unflushed resolutions included."""
        sql = "SELECT * FROM {s}.stats_daily WHERE day >= ? AND day <= ?"
        args: list[Any] = [start, end]
        if prefix:
            sql += " AND prefix = ?"
            args.append(handle_key(prefix))
        stored = await self.reg.store.query(sql, *args)
        rows = {(r["day"], r["prefix"]): dict(r) for r in stored}
        today = day_of(self.reg.clock())
        if start <= today <= end:
            for p, n in self.pending.items():
                key = (today, handle_key(p))
                if prefix and key[1] != handle_key(prefix):
                    continue
                row = rows.setdefault(
                    key, {"day": today, "prefix": key[1], "registrations": 0, "resolutions": 0}
                )
                row["resolutions"] += n
        return [rows[k] for k in sorted(rows)]

    async def monthly_report(self, month: str) -> dict[str, Any]:
        """The figures for ``YYYY-MM``: per allocated prefix, its organisation and counts."""
        if len(month) != 7 or month[4] != "-" or not (month[:4] + month[5:]).isdigit():
            raise RegistryError("must be YYYY-MM", field="month")
        await self.flush()
        reg = self.reg
        per: dict[str, dict[str, int]] = {}
        for r in await self.daily(start=f"{month}-01", end=f"{month}-31"):
            acc = per.setdefault(r["prefix"], {"registrations": 0, "resolutions": 0})
            acc["registrations"] += r["registrations"]
            acc["resolutions"] += r["resolutions"]
        rows = []
        for p in await reg.prefixes.list():
            org = await reg.organisations.get(p["org_id"])
            figures = per.get(handle_key(p["prefix"]), {"registrations": 0, "resolutions": 0})
            rows.append(
                {
                    "prefix": p["prefix"],
                    "state": p["state"],
                    "organisation": org["legal_name"],
                    "credit_code": org["credit_code"],
                    "template": p["template"],
                    "registrations": figures["registrations"],
                    "resolutions": figures["resolutions"],
                    "identifiers": await reg.store.count_handles(p["prefix"]),
                }
            )
        return {
            "node": reg.node_name,
            "node_prefix": reg.node_prefix,
            "month": month,
            "generated_at": reg.now(),
            "audit_head": await reg.audit.head(),
            "totals": {
                "registrations": sum(r["registrations"] for r in rows),
                "resolutions": sum(r["resolutions"] for r in rows),
                "identifiers": sum(r["identifiers"] for r in rows),
            },
            "prefixes": rows,
        }

    async def refresh(self) -> None:
        """Read what ``render`` shows (the collector runs inside Prometheus' sync code)."""
        store = self.reg.store
        self._snapshot = {
            "totals": await store.query(
                "SELECT prefix, CAST(sum(registrations) AS bigint) AS regs,"
                " CAST(sum(resolutions) AS bigint) AS res"
                " FROM {s}.stats_daily GROUP BY prefix"
            ),
            "orgs": await store.query(
                "SELECT state, count(*) AS n FROM {s}.organisations GROUP BY state"
            ),
            "prefixes": await store.query(
                "SELECT state, count(*) AS n FROM {s}.prefixes GROUP BY state"
            ),
        }

    async def render(self) -> bytes:
        await self.refresh()
        for refresh in self.refreshers:
            await refresh()
        return generate_latest(self.metrics)


def report_csv(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    cols = ["month", "prefix", "state", "organisation", "credit_code", "template",
            "registrations", "resolutions", "identifiers"]  # fmt: skip
    w = csv.DictWriter(buf, cols, lineterminator="\n")
    w.writeheader()
    for row in report["prefixes"]:
        w.writerow({"month": report["month"], **row})
    return buf.getvalue()


class _Collector:
    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        snap = self.stats._snapshot
        res = CounterMetricFamily(
            "idnode_resolutions", "Resolution requests per prefix", labels=["prefix"]
        )
        regs = CounterMetricFamily(
            "idnode_registrations", "Identifiers registered per prefix", labels=["prefix"]
        )
        totals: dict[str, list[int]] = {r["prefix"]: [r["regs"], r["res"]] for r in snap["totals"]}
        for p, n in self.stats.pending.items():
            totals.setdefault(handle_key(p), [0, 0])[1] += n
        for prefix, (r_, s_) in sorted(totals.items()):
            regs.add_metric([prefix], r_)
            res.add_metric([prefix], s_)
        yield regs
        yield res
        orgs = GaugeMetricFamily("idnode_organisations", "Organisations by state", labels=["state"])
        for r in snap["orgs"]:
            orgs.add_metric([r["state"]], r["n"])
        yield orgs
        pfx = GaugeMetricFamily("idnode_prefixes", "Enterprise prefixes by state", labels=["state"])
        for r in snap["prefixes"]:
            pfx.add_metric([r["state"]], r["n"])
        yield pfx
