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
    "admin": "Administration and permissions",
    "rest": "REST API",
    "timing": "Timing sanity",
}

# what a check needs from the command line; missing ones make it "skipped"
NEEDS = ("udp", "tcp", "http", "admin")

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
) -> Callable[[CheckFn], CheckFn]:
    """Register a check; duplicate ids and unknown fields fail at import, not at run time."""
    if severity not in (MUST, SHOULD):
        raise ValueError(f"{id}: severity must be must or should")
    if category not in CATEGORIES:
        raise ValueError(f"{id}: unknown category {category!r}")
    if any(n not in NEEDS for n in needs):
        raise ValueError(f"{id}: unknown need in {needs!r}")

    def register(fn: CheckFn) -> CheckFn:
        if id in REGISTRY:
            raise ValueError(f"duplicate check id {id}")
        REGISTRY[id] = CheckSpec(id, title, reference, severity, category, tuple(needs), fn)
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
            lines.append(
                f"| {c.id} | {c.title} | {c.reference} | {c.severity} | {', '.join(c.needs)} |"
            )
        lines.append("")
    return "\n".join(lines)
