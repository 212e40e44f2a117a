"""The check registry: every check has a stable id, a title, a reference and a severity.

Ids never change meaning once published (reports and CI dashboards key on them); a retired
check keeps its id reserved. Check modules register with the ``check`` decorator;
``all_checks`` imports them all, so the catalogue is exactly what the code defines.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

MUST = "must"
SHOULD = "should"

CATEGORIES: dict[str, str] = {
    "envelope": "Envelope and header fields",
    "resolution": "Resolution",
    "siteinfo": "Get-siteinfo and HS_SITE",
    "errors": "Unknown opcodes and malformed messages",
    "recursion": "Recursion and expiration",
    "auth": "Authentication flows",
    "sessions": "Keyed sessions (RFC 3652 §3.8)",
    "admin": "Administration and permissions",
    "rest": "REST API",
    "timing": "Timing sanity",
    "idis": "IDIS SDK (Teleinfo id-pointer-sdk)",
}

# what a check needs from the command line; missing ones make it "skipped" ("idis": the
# target is meant to serve the IDIS SDK, ``--idis``; a Handle.Net server fails those checks)
NEEDS = ("udp", "tcp", "http", "admin", "idis")

CheckFn = Callable[[Any], Awaitable[None]]

_MODULES = (
    "checks_envelope",
    "checks_resolution",
    "checks_siteinfo",
    "checks_errors",
    "checks_auth",
    "checks_admin",
    "checks_rest",
    "checks_timing",
    "checks_idis",
)


@dataclass(frozen=True, slots=True)
class CheckSpec:
    """One catalogue entry and the coroutine that runs it."""

    id: str
    title: str
    reference: str
    severity: str
    category: str
    needs: tuple[str, ...]
    fn: CheckFn
    # for a should-check: where the expectation comes from when no RFC requires it (a
    # HANDLE.NET behaviour clients rely on, a robustness rule), shown in the catalogue
    source: str = ""

    @property
    def doc(self) -> str:
        return (self.fn.__doc__ or "").strip()


REGISTRY: dict[str, CheckSpec] = {}


def check(
    id: str,
    title: str,
    reference: str,
    severity: str = MUST,
    category: str = "resolution",
    needs: tuple[str, ...] = ("udp",),
    source: str = "",
) -> Callable[[CheckFn], CheckFn]:
    """Register a check; duplicate ids and unknown fields fail at import, not at run time.

    A must-check is what the RFCs require: a node built from them alone must pass it. An
    expectation no RFC states is a should-check, and ``source`` says where it comes from."""
    if severity not in (MUST, SHOULD):
        raise ValueError(f"{id}: severity must be must or should")
    if source and severity != SHOULD:
        raise ValueError(f"{id}: only a should-check names a source beyond its reference")
    if category not in CATEGORIES:
        raise ValueError(f"{id}: unknown category {category!r}")
    if any(n not in NEEDS for n in needs):
        raise ValueError(f"{id}: unknown need in {needs!r}")

    def register(fn: CheckFn) -> CheckFn:
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id}")
        REGISTRY[id] = CheckSpec(id, title, reference, severity, category, tuple(needs), fn, source)
        return fn

    return register


def all_checks() -> list[CheckSpec]:
    """Every registered check, in catalogue order (category order, then id)."""
    for name in _MODULES:
        importlib.import_module(f"{__package__}.{name}")
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted(REGISTRY.values(), key=lambda c: (order[c.category], c.id))


def select(checks: list[CheckSpec], patterns: list[str]) -> list[CheckSpec]:
    """Checks whose id, id prefix (``ENV``) or category matches one of ``patterns``."""
    if not patterns:
        return checks
    wanted = [p.strip().upper() for p in patterns if p.strip()]
    return [
        c
        for c in checks
        if any(c.id == p or c.id.startswith(p + "-") or c.category.upper() == p for p in wanted)
    ]


def markdown(checks: list[CheckSpec]) -> str:
    """The catalogue as the Markdown table checked in as docs/verification.md."""
    lines = []
    for cat, label in CATEGORIES.items():
        rows = [c for c in checks if c.category == cat]
        if not rows:
            continue
        lines += [f"### {label} ({len(rows)})", "", "| id | title | reference | severity | needs |"]
        lines.append("| --- | --- | --- | --- | --- |")
        for c in rows:
            severity = f"{c.severity} ({c.source})" if c.source else c.severity
            lines.append(
                f"| {c.id} | {c.title} | {c.reference} | {severity} | {', '.join(c.needs)} |"
            )
        lines.append("")
    return "\n".join(lines)
