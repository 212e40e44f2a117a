"""``hierarchy.db``: a parent's children, their enrolment tokens and their report history.

Beside the node's other files, in SQLite (WAL), because the CLI (``idnode child ...``) and
the serving process both use it while the node runs; the serving process notices the CLI's
changes through ``data_version`` without polling the tables.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DB_NAME = "hierarchy.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS children (
    key TEXT PRIMARY KEY,            -- upper-cased prefix
    prefix TEXT NOT NULL,
    state TEXT NOT NULL,             -- allocated | enrolled | suspended
    token_hash TEXT,                 -- sha256 of the one-time enrolment token
    token_expires INTEGER,
    report_hash TEXT,                -- sha256 of the child's report token
    site BLOB,                       -- the child's HS_SITE as enrolled
    public_key BLOB,                 -- the child's admin key, HS_PUBKEY bytes
    name TEXT DEFAULT '',
    role TEXT DEFAULT '',
    reason TEXT DEFAULT '',
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    last_report INTEGER,
    last_health TEXT,
    last_check INTEGER,
    check_error TEXT                 -- NULL: the last health check passed
);
CREATE UNIQUE INDEX IF NOT EXISTS children_token ON children (token_hash);
CREATE INDEX IF NOT EXISTS children_report ON children (report_hash);
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    time INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_key ON reports (key, id);
"""


class HierarchyDB:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(
            self.path, timeout=10, isolation_level=None, check_same_thread=False
        )
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(SCHEMA)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def one(self, sql: str, args: tuple = ()) -> dict[str, Any] | None:
        row = self.conn.execute(sql, args).fetchone()
        return None if row is None else dict(row)

    def all(self, sql: str, args: tuple = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, args)]

    def data_version(self) -> int:
        """Changes when *another* connection commits (SQLite ``PRAGMA data_version``)."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        self.conn.close()
