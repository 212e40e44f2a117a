"""What the operations page shows, read from where the node keeps it (docs/console.md):

* the response caches' hit rate, from the same Prometheus collectors ``/metrics`` serves
  (``idnode_response_cache_hits`` / ``_misses`` per face, registered by ``serve``), and the
  recursive resolver's cache when the hierarchy has one: one set of counters, two views;
* the children of this node in the hierarchy (``ReportBook.status``): state, health and why
  not, when each last reported, and the totals of its last report (registrations and
  resolutions summed over the prefixes it reported);
* this node's replication (``replication.status``): its role, epoch and position and, on
  a mirror, its source and how many transactions it is behind, read from the store;
* the audit log's newest entries and the chain's verification (``AuditLog.verify``, the
  check ``idnode audit verify`` runs), so a broken chain shows where it broke.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from idnode.registry.service import Registry
    from idnode.service.node import Node

AUDIT_SHOWN = 50
COUNTERS = {"idnode_response_cache_hits": "hits", "idnode_response_cache_misses": "misses",
            "idnode_recursive_hits": "hits", "idnode_recursive_misses": "misses",
            "idnode_recursive_negative_hits": "hits"}  # fmt: skip


def cache_rates(metrics: CollectorRegistry) -> list[dict[str, Any]]:
    """One row per cache (face): hits, misses and the hit rate (None before any lookup)."""
    rows: dict[str, dict[str, Any]] = {}
    for family in metrics.collect():
        for sample in family.samples:
            base = sample.name.removesuffix("_total")
            what = COUNTERS.get(base)
            if what is None or sample.name.endswith("_created"):
                continue
            cache = sample.labels.get("face") or "recursive"
            row = rows.setdefault(cache, {"cache": cache, "hits": 0, "misses": 0})
            row[what] += int(sample.value)
    for row in rows.values():
        lookups = row["hits"] + row["misses"]
        row["rate"] = row["hits"] / lookups if lookups else None
    return [rows[k] for k in sorted(rows)]


def child_totals(child: dict[str, Any]) -> dict[str, int]:
    totals = {"registrations": 0, "resolutions": 0}
    for entry in child.get("prefixes") or ():
        if isinstance(entry, dict):
            for key in totals:
                value = entry.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    totals[key] += value
    return totals


async def operations_context(node: Node, reg: Registry) -> dict[str, Any]:
    hierarchy = getattr(node, "hierarchy", None)
    children = None
    if hierarchy is not None:
        children = [{**c, "totals": child_totals(c)} for c in await hierarchy.book.status()]
    replication = None
    metrics = getattr(node, "replication_metrics", None)
    if metrics is not None:
        await metrics.refresh()
        replication = metrics.status.as_dict() if metrics.status is not None else None
    checked, findings = await reg.audit.verify()
    count = await reg.audit.count()
    last = await reg.store.query_value("SELECT max(seq) FROM {s}.audit") or 0
    entries = await reg.audit.entries(max(int(last) - AUDIT_SHOWN, 0), AUDIT_SHOWN)
    return {
        "caches": cache_rates(reg.stats.metrics),
        "children": children,
        "replication": replication,
        "audit": {"checked": checked, "count": count, "findings": [str(f) for f in findings],
                  "intact": not findings, "entries": list(reversed(entries))},
    }  # fmt: skip


__all__ = ["cache_rates", "child_totals", "operations_context"]
