"""The registry's own tables, in ``registry.db`` beside the node's store.

Why a sibling file and not tables inside ``node.db``: the store owns its file and its
migrations (``PRAGMA user_version``), and a PostgreSQL engine is being added beside SQLite;
governance data is small, written rarely and read by operators, so it gets its own SQLite file
with its own migrations whatever engine holds the identifiers. The price is that a store write
and a registry write are two transactions; every place that spans both (prefix allocation,
bulk import) is written to be re-runnable, using the store as the truth (see ``imports.py``).

SQL is plain (no engine features beyond WAL) so the tables can move to PostgreSQL later.
Calls are synchronous: registry writes are rare and each is a few hundred microseconds.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE organisations (
            id INTEGER PRIMARY KEY AUTOINCREMENT, legal_name TEXT NOT NULL,
            credit_code TEXT NOT NULL UNIQUE, contact TEXT NOT NULL, documents TEXT NOT NULL,
            state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL)""",
        """CREATE TABLE accounts (
            id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
            org_id INTEGER REFERENCES organisations (id), identity TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE, expires_at INTEGER, created_at INTEGER NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE prefixes (
            prefix TEXT PRIMARY KEY, org_id INTEGER NOT NULL REFERENCES organisations (id),
            template TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)""",
        """CREATE TABLE state_changes (
            id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, target TEXT NOT NULL,
            time INTEGER NOT NULL, actor TEXT NOT NULL, from_state TEXT, to_state TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX state_changes_by_target ON state_changes (kind, target, id)",
        """CREATE TABLE lifecycle (
            key TEXT PRIMARY KEY, handle TEXT NOT NULL, state TEXT NOT NULL,
            reason TEXT NOT NULL DEFAULT '', since INTEGER NOT NULL, actor TEXT NOT NULL)""",
        """CREATE TABLE versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, handle TEXT NOT NULL,
            time INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, record TEXT)""",
        "CREATE INDEX versions_by_key ON versions (key, id)",
        """CREATE TABLE audit (
            seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, actor TEXT NOT NULL,
            action TEXT NOT NULL, target TEXT NOT NULL, before_digest TEXT NOT NULL,
            after_digest TEXT NOT NULL, prev_digest TEXT NOT NULL, digest TEXT NOT NULL)""",
        """CREATE TABLE jobs (
            id TEXT PRIMARY KEY, prefix TEXT NOT NULL, template TEXT NOT NULL,
            format TEXT NOT NULL, source TEXT NOT NULL, actor TEXT NOT NULL,
            state TEXT NOT NULL, batch_size INTEGER NOT NULL, batches_done INTEGER NOT NULL,
            rows_done INTEGER NOT NULL, imported INTEGER NOT NULL, rejected INTEGER NOT NULL,
            error TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL,
            finished_at INTEGER)""",
        """CREATE TABLE job_rejects (
            job_id TEXT NOT NULL, row INTEGER NOT NULL, field TEXT NOT NULL,
            message TEXT NOT NULL, PRIMARY KEY (job_id, row))""",
        """CREATE TABLE stats_daily (
            day TEXT NOT NULL, prefix TEXT NOT NULL,
            registrations INTEGER NOT NULL DEFAULT 0, resolutions INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (day, prefix))""",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ),
)

DB_NAME = "registry.db"


class RegistryDB:
    """One SQLite connection shared by the registry's modules, serialised by a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA busy_timeout = 5000")
        self._lock = threading.RLock()
        self._depth = 0
        self._migrate()

    def _migrate(self) -> None:
        version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        for target in range(version + 1, len(MIGRATIONS) + 1):
            with self.tx() as c:
                for statement in MIGRATIONS[target - 1]:
                    c.execute(statement)
                c.execute(f"PRAGMA user_version = {target}")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (nested calls join the outer one): all or nothing."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with self._lock:
            return self._conn.execute(sql, args).fetchone()

    def get_meta(self, key: str, default: str = "") -> str:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return default if row is None else row[0]

    def set_meta(self, c: sqlite3.Connection, key: str, value: str) -> None:
        c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
