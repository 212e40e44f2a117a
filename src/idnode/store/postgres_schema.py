"""The PostgreSQL engine's schema: its migrations and the SQL it runs, for one named schema.

Every table lives in one PostgreSQL schema (``idnode`` by default) and every statement names
it explicitly rather than relying on ``search_path``: connection poolers such as PgBouncer
drop or share session settings, and tests run side by side in throw-away schemas.

``schema_version`` has one row per applied migration. ``MIGRATIONS[i]`` takes the schema from
version i to i + 1; never edit a released entry, append a new one.
"""

from __future__ import annotations

import hashlib
import re

import asyncpg

from idnode.errors import IdnodeError
from idnode.store.capture import postgres_ddl, postgres_statement_ddl
from idnode.store.governance import (
    QUOTA_TABLES,
    RECURSIVE_CACHE_TABLES,
    SESSION_TABLES,
    TABLES,
    TEMPLATE_SUPERVISION_TABLES,
)
from idnode.store.portable import postgres_types, render_ddl

# Keys are compared with COLLATE "C" (byte order, as SQLite's BINARY): ORDER BY key must list
# handles in the same order on both engines, whatever the database's default collation is.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE {s}.handles (
            key    text COLLATE "C" PRIMARY KEY,  -- handle_key(handle): case-insensitive lookup
            handle text NOT NULL,                 -- as spelled when created
            prefix text COLLATE "C"               -- handle_key of the part before '/'
        )""",
        "CREATE INDEX handles_by_prefix ON {s}.handles (prefix, key) WHERE prefix IS NOT NULL",
        """CREATE TABLE {s}.handle_values (
            key         text COLLATE "C" NOT NULL REFERENCES {s}.handles (key) ON DELETE CASCADE,
            idx         integer NOT NULL,
            type        text NOT NULL,
            data        bytea NOT NULL,
            permissions smallint NOT NULL,
            ttl_type    smallint NOT NULL,
            ttl         integer NOT NULL,
            timestamp   bigint NOT NULL,
            refs        text,                     -- JSON [[handle, index], ...]; NULL when none
            PRIMARY KEY (key, idx)
        )""",
        """CREATE TABLE {s}.homed_prefixes (
            key    text COLLATE "C" PRIMARY KEY,
            prefix text NOT NULL
        )""",
        """CREATE TABLE {s}.txlog (
            serial    bigint PRIMARY KEY,
            timestamp bigint NOT NULL,
            action    text NOT NULL,
            handle    text NOT NULL
        )""",
        # The one-row counter that hands out serials. Its row lock is held from the moment a
        # write takes a serial until it commits, so serials are gap-free and in commit order.
        """CREATE TABLE {s}.serial_counter (
            one    boolean PRIMARY KEY DEFAULT true CHECK (one),
            serial bigint NOT NULL
        )""",
        "INSERT INTO {s}.serial_counter VALUES (true, 0)",
    ),
    # 2: everything else a node knows (store/governance.py), beside the identifiers
    tuple(render_ddl(t, postgres_types("{s}")) for t in TABLES),
    # 3: quota counters (service/quotas.py)
    tuple(render_ddl(t, postgres_types("{s}")) for t in QUOTA_TABLES),
    # 4: the recursive cache the workers of a recursive node share (hierarchy/shared_cache.py)
    tuple(render_ddl(t, postgres_types("{s}")) for t in RECURSIVE_CACHE_TABLES),
    # 5: custom templates, each record's template version, children's audit heads
    tuple(render_ddl(t, postgres_types("{s}")) for t in TEMPLATE_SUPERVISION_TABLES),
    # 6: each record's pre-encoded public answer (wire.public_answer); existing records have
    # none until written again, and take the full path meanwhile
    (
        """CREATE TABLE {s}.public_answers (
            key        text COLLATE "C" PRIMARY KEY
                       REFERENCES {s}.handles (key) ON DELETE CASCADE,
            wire       bytea NOT NULL,    -- the value list of a resolution response
            json       bytea NOT NULL,    -- the REST values array
            restricted boolean NOT NULL   -- values an authorised reader may read
        )""",
    ),
    # 7: which governance rows changed, for mirrors (store/capture.py)
    postgres_ddl(),
    # 8: whether every record has its stored answer (the SQLite engine's migration 8)
    ("CREATE TABLE {s}.public_answers_fill (complete boolean NOT NULL)",),
    # 9: the REST API's sessions, shared by every worker (auth/rest_sessions.py)
    tuple(render_ddl(t, postgres_types("{s}")) for t in SESSION_TABLES),
    # 10: the mirrors' capture once per statement, not per row (store/capture.py)
    postgres_statement_ddl(),
)
SCHEMA_VERSION = len(MIGRATIONS)

_NAME = re.compile(r"[a-z_][a-z0-9_]{0,49}")


def check_schema_name(schema: str) -> str:
    """A schema name we can splice into SQL and into a NOTIFY channel name without quoting."""
    if not isinstance(schema, str) or not _NAME.fullmatch(schema) or schema.startswith("pg_"):
        raise ValueError(f"bad PostgreSQL schema name {schema!r} (want [a-z_][a-z0-9_]{{0,49}})")
    return schema


def channel_of(schema: str) -> str:
    """The NOTIFY channel of a schema: ``idnode_serial`` for the default schema ``idnode``."""
    return f"{schema}_serial"


def _lock_key(schema: str) -> int:
    """A 64-bit advisory-lock key per schema: concurrent first starts migrate one at a time."""
    digest = hashlib.blake2b(f"idnode-migrate:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def migrate(conn: asyncpg.Connection, schema: str) -> int:
    """Bring ``schema`` to ``SCHEMA_VERSION``, one transaction per step; return the version.

    The common case (already current) is one catalog query and no DDL, so a role without
    CREATE rights can open an up-to-date store. Steps run under a transaction-level advisory
    lock, re-reading the version after taking it, so two processes starting at once do not
    both apply a step.
    """
    version = await _version(conn, schema)
    while version < SCHEMA_VERSION:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(schema))
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.schema_version ("
                " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            version = await _version(conn, schema)
            if version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    await conn.execute(statement.format(s=schema))
                version += 1
                await conn.execute(
                    f"INSERT INTO {schema}.schema_version (version) VALUES ($1)", version
                )
    if version > SCHEMA_VERSION:
        raise IdnodeError(
            f"postgres store: schema {schema} is at version {version}, newer than this"
            f" idnode ({SCHEMA_VERSION})"
        )
    return version


async def _version(conn: asyncpg.Connection, schema: str) -> int:
    if await conn.fetchval("SELECT to_regclass($1)", f"{schema}.schema_version") is None:
        return 0
    return await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {schema}.schema_version")


class Statements:
    """The engine's SQL with the schema name filled in, built once per store."""

    def __init__(self, schema: str) -> None:
        s = schema
        self.get = (
            "SELECT v.idx, v.type, v.data, v.permissions, v.ttl_type, v.ttl, v.timestamp, v.refs"
            f" FROM {s}.handles h LEFT JOIN {s}.handle_values v ON v.key = h.key"
            " WHERE h.key = $1 ORDER BY v.idx"
        )
        self.list = (
            f"SELECT handle FROM {s}.handles WHERE prefix = $1 ORDER BY key LIMIT $2 OFFSET $3"
        )
        self.count = f"SELECT count(*) FROM {s}.handles WHERE prefix = $1"
        self.get_answers = (
            f"SELECT key, wire, json, restricted FROM {s}.public_answers WHERE key = ANY($1)"
        )
        self.put_answer = (
            f"INSERT INTO {s}.public_answers VALUES ($1, $2, $3, $4) ON CONFLICT (key)"
            " DO UPDATE SET wire = EXCLUDED.wire, json = EXCLUDED.json,"
            " restricted = EXCLUDED.restricted"
        )
        self.drop_answer = f"DELETE FROM {s}.public_answers WHERE key = $1"
        # backfill: the batch's handles locked against writes (theirs take FOR UPDATE) while
        # their values are read and encoded; only those still without an answer
        self.keys_without_answers = (
            f"SELECT h.key FROM {s}.handles h WHERE h.key > $1 AND NOT EXISTS"
            f" (SELECT 1 FROM {s}.public_answers a WHERE a.key = h.key)"
            " ORDER BY h.key LIMIT $2 FOR SHARE OF h"
        )
        self.answers_filled = f"SELECT 1 FROM {s}.public_answers_fill WHERE complete"
        self.answers_unfilled = f"DELETE FROM {s}.public_answers_fill"
        self.answers_fill_started = f"INSERT INTO {s}.public_answers_fill VALUES (false)"
        self.answers_fill_done = f"UPDATE {s}.public_answers_fill SET complete = true"
        self.values_of = (
            "SELECT key, idx, type, data, permissions, ttl_type, ttl, timestamp, refs"
            f" FROM {s}.handle_values WHERE key = ANY($1::text[]) ORDER BY key, idx"
        )
        self.fill_answer = (
            f"INSERT INTO {s}.public_answers VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING"
        )
        self.homed = f"SELECT prefix FROM {s}.homed_prefixes ORDER BY key"
        self.serial = f"SELECT serial FROM {s}.serial_counter"
        self.transactions = (
            f"SELECT serial, timestamp, action, handle FROM {s}.txlog WHERE serial > $1"
            " ORDER BY serial LIMIT $2"
        )
        # -- writes ----------------------------------------------------------------------------
        # The log step is last in every write: it takes the counter's row lock, logs, and
        # queues the NOTIFY (delivered by PostgreSQL at commit, never for a rolled-back write).
        self.log = (
            f"WITH c AS (UPDATE {s}.serial_counter SET serial = serial + 1 RETURNING serial),"
            f" l AS (INSERT INTO {s}.txlog SELECT serial, $1, $2, $3 FROM c RETURNING serial)"
            " SELECT serial, pg_notify($4, serial::text) FROM l"
        )
        self.take_serials = f"UPDATE {s}.serial_counter SET serial = serial + $1 RETURNING serial"
        self.notify = "SELECT pg_notify($1, $2::bigint::text)"
        self.lock_handle = f"SELECT handle FROM {s}.handles WHERE key = $1 FOR UPDATE"
        self.insert_handle = (
            f"INSERT INTO {s}.handles VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING"
            " RETURNING key"
        )
        self.upsert_handle = (
            f"INSERT INTO {s}.handles VALUES ($1, $2, $3)"
            " ON CONFLICT (key) DO UPDATE SET handle = EXCLUDED.handle RETURNING key"
        )
        self.clear_values = f"DELETE FROM {s}.handle_values WHERE key = $1"
        self.delete_handle = f"DELETE FROM {s}.handles WHERE key = $1 RETURNING handle"
        self.delete_handles = f"DELETE FROM {s}.handles WHERE key = ANY($1::text[])"
        self.existing = f"SELECT key, handle FROM {s}.handles WHERE key = ANY($1::text[])"
        # values travel as one array per column: one statement, one round trip per write
        unnest = (
            "unnest($2::int[], $3::text[], $4::bytea[], $5::smallint[], $6::smallint[],"
            " $7::int[], $8::bigint[], $9::text[])"
        )
        self.add_values = (
            f"INSERT INTO {s}.handle_values SELECT $1, u.* FROM {unnest} AS u"
            " ON CONFLICT (key, idx) DO NOTHING RETURNING idx"
        )
        self.modify_values = (
            f"UPDATE {s}.handle_values h SET type = u.type, data = u.data,"
            " permissions = u.permissions, ttl_type = u.ttl_type, ttl = u.ttl,"
            " timestamp = u.timestamp, refs = u.refs"
            f" FROM {unnest} AS u(idx, type, data, permissions, ttl_type, ttl, timestamp, refs)"
            " WHERE h.key = $1 AND h.idx = u.idx RETURNING h.idx"
        )
        self.remove_values = (
            f"DELETE FROM {s}.handle_values WHERE key = $1 AND idx = ANY($2::int[]) RETURNING idx"
        )
        self.home = (
            f"INSERT INTO {s}.homed_prefixes VALUES ($1, $2) ON CONFLICT (key) DO NOTHING"
            " RETURNING key"
        )
        self.unhome = f"DELETE FROM {s}.homed_prefixes WHERE key = $1 RETURNING prefix"
        # bulk load: log rows wait in a temporary table until the serials are taken at the end
        self.load_log_create = (
            "CREATE TEMPORARY TABLE idnode_load_log"
            " (ord bigint, timestamp bigint, handle text) ON COMMIT DROP"
        )
        self.load_log_flush = (
            f"INSERT INTO {s}.txlog SELECT $1::bigint + ord, timestamp, 'load', handle"
            " FROM idnode_load_log"
        )
