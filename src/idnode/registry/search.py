"""Search the identifiers of one prefix by template field and by lifecycle state.

A query names a prefix (so it walks the store's ``handles_by_prefix`` index, never the
whole table), exact values of template fields (``BATCH=B1``, ``SERIAL=...``, ``MODEL=...``),
an optional range of a date field (ISO dates compare as text, and the store compares value
bytes in byte order on both engines) and an optional state (``active``, ``suspended``,
``revoked``: the ``lifecycle`` table). Pages are keyset pages: ``after`` is the last key of
the previous page, so a page costs the same however deep it is and rows inserted meanwhile
never shift it.

The same query drives the bulk state change (``bulk.py``), whose dry run is ``count``.
Values without PUBLIC_READ are sealed when the store encrypts at rest, so they cannot be
matched: template fields are written public (``api.py``), which is what is searched.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from idnode.model import handle_key
from idnode.registry.errors import RegistryError
from idnode.registry.states import ACTIVE, REVOKED, SUSPENDED

if TYPE_CHECKING:
    from idnode.registry.service import Registry

MAX_PAGE = 1000
STATES = (ACTIVE, SUSPENDED, REVOKED)


@dataclass(frozen=True)
class Query:
    prefix: str
    fields: Mapping[str, str] = field(default_factory=dict)
    date_field: str = "PRODUCTION_DATE"
    date_from: str = ""
    date_to: str = ""
    state: str = ""

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"prefix": self.prefix, "fields": dict(self.fields)}
        if self.date_from or self.date_to:
            out["date"] = {"field": self.date_field, "from": self.date_from, "to": self.date_to}
        if self.state:
            out["state"] = self.state
        return out


def parse_field_filters(items: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs (query string or CLI) as a mapping; a bad pair names itself."""
    out: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or not name.strip() or value == "":
            raise RegistryError(f"{item!r} is not NAME=VALUE", field="field")
        out[name.strip()] = value
    return out


class Search:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg

    def check(self, q: Query) -> None:
        """Refuse a query that names what the prefix's template does not have."""
        tmpl = self.reg.states.template_of(q.prefix)
        if tmpl is None:
            raise RegistryError(f"{q.prefix} is not an allocated prefix here", field="prefix")
        for name in q.fields:
            if name not in tmpl.fields:
                raise RegistryError(f"not a field of template {tmpl.ref}", field=name)
        if q.date_from or q.date_to:
            if q.date_field not in tmpl.fields:
                raise RegistryError(f"not a field of template {tmpl.ref}", field="date_field")
            for name, value in (("from", q.date_from), ("to", q.date_to)):
                if value:
                    try:
                        datetime.date.fromisoformat(value)
                    except ValueError:
                        raise RegistryError("must be a date YYYY-MM-DD", field=name) from None
        if q.state and q.state not in STATES:
            raise RegistryError(f"must be one of {', '.join(STATES)}", field="state")

    def _where(self, q: Query) -> tuple[str, list[Any]]:
        sql = ["h.prefix = ?"]
        args: list[Any] = [handle_key(q.prefix)]
        value = "EXISTS (SELECT 1 FROM {s}.handle_values v WHERE v.key = h.key AND v.type = ?"
        for name, want in sorted(q.fields.items()):
            sql.append(value + " AND v.data = ?)")
            args += [name, want.encode("utf-8")]
        if q.date_from or q.date_to:
            cond, extra = [], []
            if q.date_from:
                cond.append(" AND v.data >= ?")
                extra.append(q.date_from.encode())
            if q.date_to:
                cond.append(" AND v.data <= ?")
                extra.append(q.date_to.encode())
            sql.append(value + "".join(cond) + ")")
            args += [q.date_field, *extra]
        if q.state == ACTIVE:
            sql.append(
                "NOT EXISTS (SELECT 1 FROM {s}.lifecycle l WHERE l.key = h.key AND l.state <> ?)"
            )
            args.append(ACTIVE)
        elif q.state:
            sql.append("EXISTS (SELECT 1 FROM {s}.lifecycle l WHERE l.key = h.key AND l.state = ?)")
            args.append(q.state)
        return " AND ".join(sql), args

    async def count(self, q: Query) -> int:
        self.check(q)
        where, args = self._where(q)
        n = await self.reg.store.query_value(
            f"SELECT count(*) FROM {{s}}.handles h WHERE {where}", *args
        )
        return int(n or 0)

    async def keys(self, q: Query, *, after: str = "", limit: int = MAX_PAGE) -> list[dict]:
        """One page of (key, handle) rows in key order, after the key ``after``."""
        self.check(q)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise RegistryError(f"must be 1 to {MAX_PAGE}", field="limit")
        where, args = self._where(q)
        return await self.reg.store.query(
            f"SELECT h.key, h.handle FROM {{s}}.handles h WHERE {where} AND h.key > ?"
            " ORDER BY h.key LIMIT ?",
            *args, after, limit,
        )  # fmt: skip

    async def all_handles(self, q: Query) -> AsyncIterator[str]:
        after = ""
        while True:
            rows = await self.keys(q, after=after)
            for r in rows:
                yield r["handle"]
            if len(rows) < MAX_PAGE:
                return
            after = rows[-1]["key"]

    async def page(self, q: Query, *, after: str = "", limit: int = 100) -> dict[str, Any]:
        """What the API and CLI show: each identifier with its state and template fields,
        and ``next`` (the ``after`` of the next page; None at the end)."""
        rows = await self.keys(q, after=after, limit=limit)
        tmpl = self.reg.states.template_of(q.prefix)
        items = []
        for r in rows:
            record = await self.reg.store.get_handle(r["handle"]) or []
            fields = {
                v.type: v.data.decode("utf-8", "replace")
                for v in record
                if tmpl is not None and v.type in tmpl.fields and v.public_read
            }
            items.append(
                {"handle": r["handle"], **self.reg.lifecycle.state_of(r["handle"]),
                 "fields": fields}
            )  # fmt: skip
        nxt = rows[-1]["key"] if len(rows) == limit else None
        return {"query": q.describe(), "items": items, "next": nxt}
