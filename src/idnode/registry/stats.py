"""Statistics: registrations and resolutions per prefix and per day, Prometheus metrics, and
the monthly report a secondary node sends its top-level node.

* Resolutions are counted in memory (``hit``: one dict update on the hot path, no I/O) and
  added to ``stats_daily`` by ``flush`` every few seconds; counts not yet flushed when the
  process is killed are lost (at most one interval's worth).
* Registrations are not counted by the write paths at all: ``flush`` folds the store's
  transaction log (``create`` and ``load`` entries since the last folded serial) into the same
  table, so every way of registering is counted once, the import included, on any engine.
* ``/metrics`` reads the table plus the unflushed counters at scrape time.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest

from idnode.model import handle_key
from idnode.registry.errors import RegistryError

if TYPE_CHECKING:
    from idnode.registry.service import Registry

log = logging.getLogger(__name__)
FLUSH_INTERVAL = 5.0
TXLOG_PAGE = 100_000  # log entries folded per store call (in SQL where the engine can)
TXLOG_PER_FLUSH = 1_000_000


def day_of(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


class Stats:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.pending: dict[str, int] = {}
        self.metrics = CollectorRegistry(auto_describe=False)
        self.metrics.register(_Collector(self))
        self._task: asyncio.Task | None = None

    def hit(self, handle: str) -> None:
        """Count one resolution (the hot path: no I/O, no allocation beyond the key)."""
        prefix = handle.partition("/")[0]
        self.pending[prefix] = self.pending.get(prefix, 0) + 1

    async def flush(self) -> None:
        """Fold pending resolutions and new transaction-log entries into ``stats_daily``."""
        reg = self.reg
        pending, self.pending = self.pending, {}
        today = day_of(reg.clock())
        cursor = int(reg.db.get_meta("txlog_cursor", "0"))
        folded: dict[tuple[str, str], int] = {}
        # at most TXLOG_PER_FLUSH log entries per flush: catching up after a bulk load of
        # millions is spread over flushes instead of stalling the node that serves
        for _ in range(TXLOG_PER_FLUSH // TXLOG_PAGE):
            counts, last = await reg.store.creation_counts(cursor, TXLOG_PAGE)
            for day, prefix, n in counts:
                if prefix != "0.NA":
                    folded[(day, prefix)] = folded.get((day, prefix), 0) + n
            if last == cursor:
                break
            cursor = last
        with reg.db.tx() as c:
            for prefix, n in pending.items():
                _add(c, today, handle_key(prefix), "resolutions", n)
            for (day, prefix), n in folded.items():
                _add(c, day, prefix, "registrations", n)
            reg.db.set_meta(c, "txlog_cursor", str(cursor))

    def start(self, interval: float = FLUSH_INTERVAL) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.flush()
                except Exception:  # keep counting; the next flush retries
                    log.exception("statistics flush failed")

        self._task = asyncio.get_running_loop().create_task(loop())

    def daily(
        self, prefix: str | None = None, start: str = "", end: str = "9999"
    ) -> list[dict[str, Any]]:
        """Rows (day, prefix, registrations, resolutions), pending resolutions included."""
        sql = "SELECT * FROM stats_daily WHERE day >= ? AND day <= ?"
        args: list[Any] = [start, end]
        if prefix:
            sql += " AND prefix = ?"
            args.append(handle_key(prefix))
        rows = {(r["day"], r["prefix"]): dict(r) for r in self.reg.db.all(sql, tuple(args))}
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
        for r in self.daily(start=f"{month}-01", end=f"{month}-31"):
            acc = per.setdefault(r["prefix"], {"registrations": 0, "resolutions": 0})
            acc["registrations"] += r["registrations"]
            acc["resolutions"] += r["resolutions"]
        rows = []
        for p in reg.prefixes.list():
            org = reg.organisations.get(p["org_id"])
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
        head = reg.db.get_meta("audit_head")
        return {
            "node": reg.node_name,
            "node_prefix": reg.node_prefix,
            "month": month,
            "generated_at": int(reg.clock()),
            "audit_head": head,
            "totals": {
                "registrations": sum(r["registrations"] for r in rows),
                "resolutions": sum(r["resolutions"] for r in rows),
                "identifiers": sum(r["identifiers"] for r in rows),
            },
            "prefixes": rows,
        }

    def render(self) -> bytes:
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


def _add(c: Any, day: str, prefix: str, column: str, n: int) -> None:
    c.execute(
        "INSERT INTO stats_daily (day, prefix) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (day, prefix),
    )
    c.execute(
        f"UPDATE stats_daily SET {column} = {column} + ? WHERE day = ? AND prefix = ?",
        (n, day, prefix),
    )


class _Collector:
    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        reg = self.stats.reg
        res = CounterMetricFamily(
            "idnode_resolutions", "Resolution requests per prefix", labels=["prefix"]
        )
        regs = CounterMetricFamily(
            "idnode_registrations", "Identifiers registered per prefix", labels=["prefix"]
        )
        totals: dict[str, list[int]] = {}
        for r in reg.db.all(
            "SELECT prefix, sum(registrations), sum(resolutions) FROM stats_daily GROUP BY prefix"
        ):
            totals[r[0]] = [r[1], r[2]]
        for p, n in self.stats.pending.items():
            totals.setdefault(handle_key(p), [0, 0])[1] += n
        for prefix, (r_, s_) in sorted(totals.items()):
            regs.add_metric([prefix], r_)
            res.add_metric([prefix], s_)
        yield regs
        yield res
        orgs = GaugeMetricFamily("idnode_organisations", "Organisations by state", labels=["state"])
        for r in reg.db.all("SELECT state, count(*) FROM organisations GROUP BY state"):
            orgs.add_metric([r[0]], r[1])
        yield orgs
        pfx = GaugeMetricFamily("idnode_prefixes", "Enterprise prefixes by state", labels=["state"])
        for r in reg.db.all("SELECT state, count(*) FROM prefixes GROUP BY state"):
            pfx.add_metric([r[0]], r[1])
        yield pfx
