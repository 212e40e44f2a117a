"""Which template version each identifier was last validated against (``record_templates``).

A prefix's template can move to a newer version (``custom_templates.bind``); records written
before keep the version they were checked with, so the store says, per identifier, which
``id@version`` its values were validated against. The row is written by the registry's write
policy in the write's own transaction (a record and its template ref commit together) and
removed when the identifier is deleted; bulk writes add their rows in multi-row statements.
"""

from __future__ import annotations

from collections.abc import Iterable

from idnode.model import handle_key
from idnode.store.effects import Statement

ROWS_PER_STATEMENT = 300  # 3 parameters a row: under SQLite's oldest 999-variable limit
UPSERT_HEAD = "INSERT INTO {s}.record_templates (key, handle, template) VALUES "
UPSERT_TAIL = (
    " ON CONFLICT (key) DO UPDATE SET handle = excluded.handle, template = excluded.template"
)


def bind(rows: Iterable[tuple[str, str]]) -> tuple[Statement, ...]:
    """Statements recording ``(handle, template ref)`` pairs (the last pair of a handle wins)."""
    latest: dict[str, tuple[str, str]] = {}
    for handle, ref in rows:
        latest[handle_key(handle)] = (handle, ref)
    items = list(latest.items())
    out = []
    for start in range(0, len(items), ROWS_PER_STATEMENT):
        chunk = items[start : start + ROWS_PER_STATEMENT]
        args: list[str] = []
        for key, (handle, ref) in chunk:
            args += [key, handle, ref]
        values = ", ".join(["(?, ?, ?)"] * len(chunk))
        out.append(Statement(UPSERT_HEAD + values + UPSERT_TAIL, tuple(args)))
    return tuple(out)


def unbind(handle: str) -> Statement:
    """The statement forgetting a deleted identifier's template ref."""
    return Statement("DELETE FROM {s}.record_templates WHERE key = ?", (handle_key(handle),))


def prefix_range(prefix: str) -> tuple[str, str]:
    """Keys ``>= low`` and ``< high`` are exactly the identifiers under ``prefix``."""
    key = handle_key(prefix)
    return key + "/", key + "0"  # "0" is the character after "/"
