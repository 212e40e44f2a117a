"""Supervision: children report to their parent on a schedule; the parent judges health.

Child side (``Reporter``): every ``report_interval`` seconds, POST a report to the parent's
``/api/hierarchy/report`` with ``Authorization: Bearer <report token>`` (the token the parent
issued at enrolment): registrations, resolutions and errors per prefix, version, health, and
the child's own children's status -- so a top-level node sees the whole subtree.

Parent side (``ReportBook``): a report is accepted only with the report token of an enrolled
child, for that child's prefix; the last ``REPORTS_KEPT`` reports per child are kept. A
child is healthy while its last report is younger than ``health_timeout``, that report says
"ok", and the parent's own health check (a get-siteinfo to the child's site) passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from idnode.codes import ResponseCode
from idnode.errors import IdnodeError
from idnode.hierarchy.db import HierarchyDB
from idnode.hierarchy.delegation import ENROLLED, SUSPENDED, token_hash
from idnode.hierarchy.resolver import describe
from idnode.hierarchy.selection import query_servers
from idnode.model import handle_key
from idnode.transport.client import request_tcp, request_udp, siteinfo_request
from idnode.wire.site import SP_HDL_TCP, SP_HDL_UDP, decode_site

log = logging.getLogger("idnode.hierarchy.reporting")

REPORTS_KEPT = 200
MAX_SUBTREE_DEPTH = 8  # a report nests its children's status at most this deep


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
    def __init__(
        self,
        db: HierarchyDB,
        *,
        clock: Callable[[], float],
        health_timeout: float = 180.0,
        check: HealthCheck = siteinfo_check,
    ) -> None:
        self.db, self.clock, self.health_timeout, self.check = db, clock, health_timeout, check

    def accept(self, token: str | None, report: object) -> dict[str, Any]:
        if not token:
            raise ReportRefused("a report needs the child's report token (Bearer)")
        row = self.db.one("SELECT * FROM children WHERE report_hash = ?", (token_hash(token),))
        if row is None:
            raise ReportRefused("report from a node that is not an enrolled child of this node")
        if not isinstance(report, dict):
            raise ReportRefused("a report is a JSON object")
        prefix = report.get("prefix")
        if not isinstance(prefix, str) or handle_key(prefix) != row["key"]:
            raise ReportRefused(f"this token reports for {row['prefix']}, not {prefix!r}")
        health = report.get("health")
        status = health.get("status") if isinstance(health, dict) else None
        now = int(self.clock())
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO reports (key, time, body) VALUES (?, ?, ?)",
                (row["key"], now, orjson.dumps(report).decode()),
            )
            c.execute(
                "DELETE FROM reports WHERE key = ? AND id NOT IN"
                " (SELECT id FROM reports WHERE key = ? ORDER BY id DESC LIMIT ?)",
                (row["key"], row["key"], REPORTS_KEPT),
            )
            c.execute(
                "UPDATE children SET last_report = ?, last_health = ? WHERE key = ?",
                (now, str(status or "unknown")[:40], row["key"]),
            )
        return {"accepted": True, "prefix": row["prefix"], "time": now}

    async def check_all(self) -> None:
        """Run the health check of every enrolled child (concurrently, each bounded)."""
        rows = self.db.all("SELECT key, site FROM children WHERE state = ?", (ENROLLED,))

        async def one(row: dict[str, Any]) -> tuple[str, str | None]:
            return row["key"], await self.check(row["site"] or b"")

        results = await asyncio.gather(*(one(r) for r in rows))
        now = int(self.clock())
        with self.db.tx() as c:
            for key, error in results:
                c.execute(
                    "UPDATE children SET last_check = ?, check_error = ? WHERE key = ?",
                    (now, error, key),
                )

    def history(self, prefix: str, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.all(
            "SELECT time, body FROM reports WHERE key = ? ORDER BY id DESC LIMIT ?",
            (handle_key(prefix), limit),
        )
        return [{"time": r["time"], "report": orjson.loads(r["body"])} for r in rows]

    def status(self) -> list[dict[str, Any]]:
        """Every child with its health and, nested, what it reported of its own subtree."""
        now = self.clock()
        out = []
        for row in self.db.all("SELECT * FROM children ORDER BY key"):
            last = self.db.one(
                "SELECT body FROM reports WHERE key = ? ORDER BY id DESC LIMIT 1", (row["key"],)
            )
            report = orjson.loads(last["body"]) if last else {}
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
