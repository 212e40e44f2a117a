"""The append-only audit log: every governance action and identifier write, chained by SM3.

Entries are appended by the store, in the transaction of the change they record
(``store.effects.AuditEntry``); the chain's arithmetic and its check are
``store.audit_chain``. This module reads them: a page of entries, the head, and a full
verification, which needs no key (an auditor can check a copy with public material only).
What this cannot stop is someone who rewrites the whole chain from an edit onwards with the
tool itself; exporting the head digest elsewhere (the monthly report carries it) pins it.
"""

from __future__ import annotations

from typing import Any

from idnode.store.audit_chain import HEAD_KEY, Finding, verify_chain
from idnode.store.base import Store
from idnode.store.governance import GET_META

PAGE = 10_000  # entries read per query while verifying


class AuditLog:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def entries(self, since: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        return await self.store.query(
            "SELECT * FROM {s}.audit WHERE seq > ? ORDER BY seq LIMIT ?", since, limit
        )

    async def head(self) -> str:
        return await self.store.query_value(GET_META, HEAD_KEY) or ""

    async def count(self) -> int:
        return await self.store.query_value("SELECT count(*) FROM {s}.audit")

    async def verify(self) -> tuple[int, list[Finding]]:
        """(entries checked, findings); no findings means the chain is intact."""
        head = await self.head()
        return verify_chain(await self.rows(), head)

    async def rows(self) -> list[dict[str, Any]]:
        """Every entry in seq order (read in pages)."""
        rows: list[dict[str, Any]] = []
        since = -1
        while True:  # in pages, in seq order; gaps and edits show in verify_chain
            page = await self.store.query(
                "SELECT * FROM {s}.audit WHERE seq > ? ORDER BY seq LIMIT ?", since, PAGE
            )
            rows.extend(page)
            if len(page) < PAGE:
                break
            since = int(page[-1]["seq"])
        return rows
