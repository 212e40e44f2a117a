"""Supervision: children report to their parent on a schedule; the parent judges health.

Child side (``Reporter``): every ``report_interval`` seconds, POST a report to the parent's
``/api/hierarchy/report`` with ``Authorization: Bearer <report token>`` (the token the parent
issued at enrolment): registrations, resolutions and errors per prefix, version, health, and
the child's own children's status -- so a top-level node sees the whole subtree.

Parent side (``ReportBook``): a report is accepted only with the report token of an enrolled
child, for that child's prefix; the last ``REPORTS_KEPT`` reports per child are kept in the
node's store (``reports``, beside ``children``), so every worker and every process on the
store sees them. A child is healthy while its last report is younger than
``health_timeout``, that report says "ok", and the parent's own health check (a get-siteinfo
to the child's site) passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from idnode.client.resolve import request_tcp, request_udp, siteinfo_request
from idnode.codes import ResponseCode
from idnode.errors import IdnodeError
from idnode.hierarchy.delegation import ACTION, ENROLLED, SUSPENDED, token_hash
from idnode.hierarchy.resolver import describe
from idnode.hierarchy.selection import query_servers
from idnode.model import handle_key
from idnode.store.effects import Effects, Statement
from idnode.wire.site import SP_HDL_TCP, SP_HDL_UDP, decode_site

if TYPE_CHECKING:
    from idnode.store.base import Store

log = logging.getLogger("idnode.hierarchy.reporting")

REPORTS_KEPT = 200
MAX_SUBTREE_DEPTH = 8  # a report nests its children's status at most this deep
STATUS_ROWS = (
    "SELECT c.prefix, c.state, c.name, c.role, c.updated, c.last_report, c.last_health,"
    " c.check_error, r.body AS last_body FROM {s}.children c LEFT JOIN {s}.reports r"
    " ON r.id = (SELECT max(id) FROM {s}.reports WHERE key = c.key) ORDER BY c.key"
)


class ReportRefused(IdnodeError):
    """The report does not come from an enrolled child of this node."""

    code = ResponseCode.NOT_AUTHORIZED


# -- child side --------------------------------------------------------------------------
class Reporter:
    """Sends ``build()`` to the parent (``Hierarchy`` calls it every ``interval`` seconds)."""

    def __init__(
        self,
        parent_url: str,
        token: str,
        build: Callable[[], Awaitable[dict[str, Any]]],
        interval: float,
        *,
        timeout: float = 5.0,
    ) -> None:
        self.url = parent_url.rstrip("/") + "/api/hierarchy/report"
        self.token, self.build, self.interval, self.timeout = token, build, interval, timeout
        self.sent = 0
        self.failures = 0

    async def report_once(self) -> dict[str, Any]:
        report = await self.build()
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            resp = await client.post(
                self.url,
                content=orjson.dumps(report),
                headers={
                    "authorization": f"Bearer {self.token}",
                    "content-type": "application/json",
                },
            )
        if resp.status_code != 200:
            raise ReportRefused(f"parent refused the report: {resp.status_code} {resp.text[:200]}")
        self.sent += 1
        return resp.json()


# -- parent side -------------------------------------------------------------------------
HealthCheck = Callable[[bytes], Awaitable[str | None]]  # site bytes -> None ok, else why


async def siteinfo_check(site: bytes, timeout: float = 1.0) -> str | None:
    """Ask one server of the child's site for its site information; None if it answered."""
    try:
        servers = query_servers(decode_site(site))
    except IdnodeError as exc:
        return f"undecodable site: {exc}"
    errors = []
    for server in servers:
        host = str(server.connect_address)
        try:
            tcp = server.interface(SP_HDL_TCP)
            if tcp is not None:
                await request_tcp(host, tcp.port, siteinfo_request(), timeout=timeout)
            else:
                udp = server.interface(SP_HDL_UDP)
                assert udp is not None
                await request_udp(host, udp.port, siteinfo_request(), timeout=timeout, attempts=1)
            return None
        except (IdnodeError, OSError, TimeoutError) as exc:
            errors.append(f"{describe(server)}: {exc or type(exc).__name__}")
    return "; ".join(errors) or "no server to check"


class ReportBook:
    """The parent's record of its children's reports and health, in the node's store.

    Reports and health checks are written to the ``reports`` and ``children`` tables (each
    in one transaction, bumping the hierarchy's version so other processes reload what they
    keep in memory); ``status`` judges health from those rows at the time it is asked.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], float],
        health_timeout: float = 180.0,
        check: HealthCheck = siteinfo_check,
    ) -> None:
        self.store, self.clock, self.check = store, clock, check
        self.health_timeout = health_timeout

    async def accept(self, token: str | None, report: object) -> dict[str, Any]:
        if not token:
            raise ReportRefused("a report needs the child's report token (Bearer)")
        row = await self.store.query_one(
            "SELECT key, prefix FROM {s}.children WHERE report_hash = ?", token_hash(token)
        )
        if row is None:
            raise ReportRefused("report from a node that is not an enrolled child of this node")
        if not isinstance(report, dict):
            raise ReportRefused("a report is a JSON object")
        prefix = report.get("prefix")
        if not isinstance(prefix, str) or handle_key(prefix) != row["key"]:
            raise ReportRefused(f"this token reports for {row['prefix']}, not {prefix!r}")
        health = report.get("health")
        status = health.get("status") if isinstance(health, dict) else None
        now, key = int(self.clock()), row["key"]
        await self.store.apply(
            Effects(
                statements=(
                    Statement(
                        "INSERT INTO {s}.reports (key, time, body) VALUES (?, ?, ?)",
                        (key, now, orjson.dumps(report).decode()),
                    ),
                    Statement(
                        "DELETE FROM {s}.reports WHERE key = ? AND id NOT IN (SELECT id FROM"
                        " {s}.reports WHERE key = ? ORDER BY id DESC LIMIT ?)",
                        (key, key, REPORTS_KEPT),
                    ),
                    Statement(
                        "UPDATE {s}.children SET last_report = ?, last_health = ? WHERE key = ?",
                        (now, str(status or "unknown")[:40], key),
                    ),
                ),
                action=ACTION,
                target=f"report {row['prefix']}",
            ),
            logged=False,  # read on demand, cached nowhere: no announcement, no cache cleared
        )
        return {"accepted": True, "prefix": row["prefix"], "time": now}

    async def check_all(self) -> None:
        """Run the health check of every enrolled child (concurrently, each bounded)."""
        rows = await self.store.query(
            "SELECT key, site FROM {s}.children WHERE state = ?", ENROLLED
        )
        if not rows:
            return

        async def one(row: dict[str, Any]) -> tuple[str, str | None]:
            return row["key"], await self.check(bytes(row["site"] or b""))

        results = await asyncio.gather(*(one(r) for r in rows))
        now = int(self.clock())
        updates = tuple(
            Statement(
                "UPDATE {s}.children SET last_check = ?, check_error = ? WHERE key = ?",
                (now, error, key),
            )
            for key, error in results
        )
        await self.store.apply(
            Effects(statements=updates, action=ACTION, target="health checks"), logged=False
        )

    async def history(self, prefix: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = await self.store.query(
            "SELECT time, body FROM {s}.reports WHERE key = ? ORDER BY id DESC LIMIT ?",
            handle_key(prefix),
            limit,
        )
        return [{"time": r["time"], "report": orjson.loads(r["body"])} for r in rows]

    async def rows(self) -> list[dict[str, Any]]:
        """What ``status_of`` judges: every child with the body of its last report."""
        return await self.store.query(STATUS_ROWS)

    async def status(self) -> list[dict[str, Any]]:
        """Every child with its health and, nested, what it reported of its own subtree."""
        return self.status_of(await self.rows(), self.clock())

    def status_of(self, rows: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        """``status`` from rows read earlier (``rows``), judged at ``now``: the metrics
        collector cannot wait for a query, so it judges the rows the node keeps."""
        out = []
        for row in rows:
            report = orjson.loads(row["last_body"]) if row["last_body"] else {}
            reasons = self._reasons(row, now)
            entry: dict[str, Any] = {
                "prefix": row["prefix"],
                "state": row["state"],
                "name": row["name"],
                "role": row["role"],
                "healthy": row["state"] == ENROLLED and not reasons,
                "reasons": reasons,
                "last_report": row["last_report"],
                "report_age": None if row["last_report"] is None else now - row["last_report"],
                "version": report.get("version"),
                "prefixes": report.get("prefixes", []),
                "subtree": _bounded(report.get("subtree", []), MAX_SUBTREE_DEPTH),
            }
            out.append(entry)
        return out

    def _reasons(self, row: dict[str, Any], now: float) -> list[str]:
        if row["state"] == SUSPENDED:
            return ["suspended by this node"]
        if row["state"] != ENROLLED:
            return ["allocated, not yet enrolled"]
        reasons = []
        if row["last_report"] is None:
            if now - row["updated"] > self.health_timeout:
                reasons.append(f"no report since enrolment ({self.health_timeout:g}s allowed)")
        elif now - row["last_report"] > self.health_timeout:
            age = now - row["last_report"]
            reasons.append(f"no report for {age:.0f}s (limit {self.health_timeout:g}s)")
        if row["last_health"] not in (None, "ok"):
            reasons.append(f"child reports health {row['last_health']!r}")
        if row["check_error"]:
            reasons.append(f"health check failed: {row['check_error']}")
        return reasons


def _bounded(subtree: object, depth: int) -> list[Any]:
    if not isinstance(subtree, list) or depth <= 0:
        return []
    out = []
    for item in subtree[:1000]:
        if isinstance(item, dict):
            out.append({**item, "subtree": _bounded(item.get("subtree", []), depth - 1)})
    return out


def walk(status: list[dict[str, Any]], parent: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(parent prefix, entry) for every node of a status tree, depth first."""
    out = []
    for entry in status:
        out.append((parent, entry))
        out.extend(walk(entry.get("subtree", []), str(entry.get("prefix", ""))))
    return out
