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
to the child's site) passes. Unless ``[hierarchy] health_timeout`` sets one limit, each
child is judged by its own schedule: three times the ``report_interval`` its last report
declares (else its role's default interval). The parent's own interval says nothing about
its children's: the root reports to nobody (interval 0) yet its children report every 300 s.
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
from idnode.hierarchy.delegation import (
    ACTION,
    ENROLLED,
    SUSPENDED,
    DelegationError,
    token_hash,
)
from idnode.hierarchy.resolver import describe
from idnode.hierarchy.roles import DEFAULTS
from idnode.hierarchy.selection import query_servers
from idnode.hierarchy.supervision import head_statement, signature_ok
from idnode.model import handle_key
from idnode.store.effects import Effects, Statement
from idnode.wire.site import SP_HDL_TCP, SP_HDL_UDP, decode_site

if TYPE_CHECKING:
    from idnode.store.base import Store

log = logging.getLogger("idnode.hierarchy.reporting")

REPORTS_KEPT = 200
DEFAULT_CHILD_INTERVAL = 300  # a child that declares no interval, of no known role
MISSED_REPORTS = 3  # reports a child may miss before it is unhealthy
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
        self.held_seq: int | None = None  # the parent's accepted audit head (supervision.py)

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
        answer = resp.json()
        audit = answer.get("audit") if isinstance(answer, dict) else None
        if isinstance(audit, dict):  # the audit seq the parent holds: the next links start there
            self.held_seq = audit.get("held_seq")
        return answer


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
        health_timeout: float | None = None,
        check: HealthCheck = siteinfo_check,
    ) -> None:
        self.store, self.clock, self.check = store, clock, check
        self.health_timeout = health_timeout  # None: judge each child by its own interval

    async def accept(self, token: str | None, report: object) -> dict[str, Any]:
        if not token:
            raise ReportRefused("a report needs the child's report token (Bearer)")
        row = await self.store.query_one(
            "SELECT key, prefix, public_key FROM {s}.children WHERE report_hash = ?",
            token_hash(token),
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
        signed_ok = signature_ok(report, row["public_key"])  # supervision.py: the evidence
        if signed_ok is False:
            raise ReportRefused("the report's signature does not match the child's key")
        try:
            head, answer = await head_statement(self.store, key, now, report, signed_ok)
        except (ValueError, TypeError) as exc:
            raise DelegationError(str(exc)) from None
        await self.store.apply(
            Effects(
                statements=(
                    *(() if head is None else (head,)),
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
        return {"accepted": True, "prefix": row["prefix"], "time": now, **answer}

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
            reasons = self._reasons(row, now, self.timeout_for(row, report))
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

    def timeout_for(self, row: dict[str, Any], report: dict[str, Any]) -> float:
        """Seconds without a report before this child is unhealthy: the configured limit,
        else ``MISSED_REPORTS`` times the interval the child reports at."""
        if self.health_timeout:
            return self.health_timeout
        interval = report.get("report_interval")
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            role = DEFAULTS.get(str(row.get("role") or ""))
            interval = role.report_interval if role and role.report_interval else 0
        return MISSED_REPORTS * float(interval or DEFAULT_CHILD_INTERVAL)

    def _reasons(self, row: dict[str, Any], now: float, timeout: float) -> list[str]:
        if row["state"] == SUSPENDED:
            return ["suspended by this node"]
        if row["state"] != ENROLLED:
            return ["allocated, not yet enrolled"]
        reasons = []
        if row["last_report"] is None:
            if now - row["updated"] > timeout:
                reasons.append(f"no report since enrolment ({timeout:g}s allowed)")
        elif now - row["last_report"] > timeout:
            age = now - row["last_report"]
            reasons.append(f"no report for {age:.0f}s (limit {timeout:g}s)")
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
