"""The governance half of the store: its tables, and how ``Effects`` are applied.

Both engines create these tables in the same database (SQLite file, PostgreSQL schema) as the
identifiers, in a versioned migration of their own, so every process and every host that
opens the store sees the same organisations, prefixes, tombstones and counts at once, and a
write and what it causes commit together.

``apply_effects`` is sans-I/O: a generator that yields the statements to run and receives
their results, so one piece of logic drives the SQLite engine (synchronously, on its writer
thread) and the PostgreSQL engine (asynchronously, on one connection) alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from idnode.model import HandleValue, handle_key
from idnode.names import prefix_part
from idnode.store.audit_chain import GENESIS, HEAD_KEY, entry_digest
from idnode.store.effects import Count, Effects

STATE_VERSION_KEY = "state_version"  # meta: serial of the last change of lifecycle/prefix state

# Tokens: {s} schema, {id} auto-numbered primary key, {key} case-folded key text, {blob} bytes.
TABLES: tuple[str, ...] = (
    "CREATE TABLE {s}.meta (key {key} PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE {s}.organisations (
        id {id}, legal_name text NOT NULL, credit_code text NOT NULL UNIQUE,
        contact text NOT NULL, documents text NOT NULL, state text NOT NULL,
        reason text NOT NULL DEFAULT '', created_at bigint NOT NULL, updated_at bigint NOT NULL)""",
    """CREATE TABLE {s}.accounts (
        id {id}, name text NOT NULL UNIQUE, role text NOT NULL,
        org_id bigint REFERENCES {s}.organisations (id), identity text NOT NULL,
        token_hash text NOT NULL UNIQUE, expires_at bigint, created_at bigint NOT NULL,
        disabled integer NOT NULL DEFAULT 0)""",
    """CREATE TABLE {s}.prefixes (
        key {key} PRIMARY KEY, prefix text NOT NULL,
        org_id bigint NOT NULL REFERENCES {s}.organisations (id), template text NOT NULL,
        state text NOT NULL, reason text NOT NULL DEFAULT '',
        created_at bigint NOT NULL, updated_at bigint NOT NULL)""",
    """CREATE TABLE {s}.state_changes (
        id {id}, kind text NOT NULL, target text NOT NULL, time bigint NOT NULL,
        actor text NOT NULL, from_state text, to_state text NOT NULL,
        reason text NOT NULL DEFAULT '')""",
    "CREATE INDEX state_changes_by_target ON {s}.state_changes (kind, target, id)",
    """CREATE TABLE {s}.lifecycle (
        key {key} PRIMARY KEY, handle text NOT NULL, state text NOT NULL,
        reason text NOT NULL DEFAULT '', since bigint NOT NULL, actor text NOT NULL)""",
    # record: the values as the store keeps them (non-public data sealed when encrypted)
    """CREATE TABLE {s}.versions (
        id {id}, key {key} NOT NULL, handle text NOT NULL, time bigint NOT NULL,
        actor text NOT NULL, action text NOT NULL, record {blob})""",
    "CREATE INDEX versions_by_key ON {s}.versions (key, id)",
    """CREATE TABLE {s}.audit (
        seq bigint PRIMARY KEY, time bigint NOT NULL, actor text NOT NULL,
        action text NOT NULL, target text NOT NULL, before_digest text NOT NULL,
        after_digest text NOT NULL, prev_digest text NOT NULL, digest text NOT NULL)""",
    """CREATE TABLE {s}.jobs (
        id text PRIMARY KEY, prefix text NOT NULL, template text NOT NULL,
        format text NOT NULL, source text NOT NULL, actor text NOT NULL,
        identity text NOT NULL, origin text NOT NULL, strict integer NOT NULL DEFAULT 0,
        state text NOT NULL, batch_size integer NOT NULL, batches_done integer NOT NULL,
        rows_done integer NOT NULL, imported integer NOT NULL, rejected integer NOT NULL,
        error text NOT NULL DEFAULT '', created_at bigint NOT NULL, finished_at bigint)""",
    """CREATE TABLE {s}.job_rejects (
        job_id text NOT NULL, line integer NOT NULL, field text NOT NULL,
        message text NOT NULL, PRIMARY KEY (job_id, line))""",
    """CREATE TABLE {s}.stats_daily (
        day text NOT NULL, prefix {key} NOT NULL,
        registrations bigint NOT NULL DEFAULT 0, resolutions bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (day, prefix))""",
    """CREATE TABLE {s}.children (
        key {key} PRIMARY KEY, prefix text NOT NULL, state text NOT NULL,
        token_hash text UNIQUE, token_expires bigint, report_hash text, site {blob},
        public_key {blob}, name text NOT NULL DEFAULT '', role text NOT NULL DEFAULT '',
        reason text NOT NULL DEFAULT '', created bigint NOT NULL, updated bigint NOT NULL,
        last_report bigint, last_health text, last_check bigint, check_error text)""",
    "CREATE INDEX children_report ON {s}.children (report_hash)",
    """CREATE TABLE {s}.reports (
        id {id}, key {key} NOT NULL, time bigint NOT NULL, body text NOT NULL)""",
    "CREATE INDEX reports_key ON {s}.reports (key, id)",
)

# Migration 3 (both engines): what each quota holder used (``service.quotas``). ``holder`` is
# an organisation (``org:<id>``) or an identity key, ``scope`` a prefix key or "", ``period``
# a UTC day or "" for quotas that never reset.
QUOTA_TABLES: tuple[str, ...] = (
    """CREATE TABLE {s}.quota_usage (
        holder {key} NOT NULL, kind text NOT NULL, scope {key} NOT NULL,
        period text NOT NULL, used bigint NOT NULL,
        PRIMARY KEY (holder, kind, scope, period))""",
)

# Migration 4 (both engines): the answers a recursive node caches, shared by all its workers
# (``hierarchy.shared_cache``): one row per handle key, the public values as one record blob
# (none for a cached "not found"), and when the answer stops being fresh.
RECURSIVE_CACHE_TABLES: tuple[str, ...] = (
    """CREATE TABLE {s}.recursive_cache (
        key {key} PRIMARY KEY, record {blob}, expires double precision NOT NULL,
        negative integer NOT NULL)""",
    "CREATE INDEX recursive_cache_expires ON {s}.recursive_cache (expires)",
)

# Migration 5 (both engines): operators' own templates (``registry/custom_templates.py``), the
# template version each identifier was last validated against (``registry/record_templates.py``)
# and the audit-chain heads children reported upward (``hierarchy/supervision.py``).
TEMPLATE_SUPERVISION_TABLES: tuple[str, ...] = (
    """CREATE TABLE {s}.templates (
        id {key} NOT NULL, version bigint NOT NULL, state text NOT NULL, document text NOT NULL,
        actor text NOT NULL, created_at bigint NOT NULL, published_at bigint,
        PRIMARY KEY (id, version))""",
    """CREATE TABLE {s}.record_templates (
        key {key} PRIMARY KEY, handle text NOT NULL, template text NOT NULL)""",
    "CREATE INDEX record_templates_by_ref ON {s}.record_templates (template, key)",
    """CREATE TABLE {s}.child_audit_heads (
        id {id}, key {key} NOT NULL, time bigint NOT NULL, seq bigint NOT NULL,
        digest text NOT NULL, verdict text NOT NULL, detail text NOT NULL DEFAULT '',
        month text NOT NULL DEFAULT '')""",
    "CREATE INDEX child_audit_heads_key ON {s}.child_audit_heads (key, id)",
)

# Migration 9 (both engines): the Handle.Net REST API's sessions (``auth/rest_sessions.py``),
# so that every worker of a node (``idnode serve --workers N``) and every host on the same
# database honours a session another opened, and a DELETE or an expiry ends it for all.
# ``digest``: SHA-256 of the session id (the bearer credential), never the id itself;
# ``identity``: ``index:handle`` once authenticated; ``nonce``: the challenge waiting for
# its answer; ``ended``: when a session made from a 401's challenge was deleted (the row
# stays, so the same challenge cannot open it again). Not replicated to mirrors
# (``store/capture.py``): a session is this node's.
SESSION_TABLES: tuple[str, ...] = (
    """CREATE TABLE {s}.rest_sessions (
        digest {key} PRIMARY KEY, identity text, nonce {blob},
        created double precision NOT NULL, last_used double precision NOT NULL,
        ended double precision)""",
    "CREATE INDEX rest_sessions_last_used ON {s}.rest_sessions (last_used)",
)

INSERT_VERSION = (
    "INSERT INTO {s}.versions (key, handle, time, actor, action, record) VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_FIRST_VERSION = (
    "INSERT INTO {s}.versions (key, handle, time, actor, action, record)"
    " SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM {s}.versions WHERE key = ?)"
)
AUDIT_HEAD = "SELECT seq, digest FROM {s}.audit ORDER BY seq DESC LIMIT 1"
INSERT_AUDIT = "INSERT INTO {s}.audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
SET_META = (
    "INSERT INTO {s}.meta (key, value) VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
GET_META = "SELECT value FROM {s}.meta WHERE key = ?"
ADD_COUNT = (
    "INSERT INTO {s}.stats_daily AS t (day, prefix, registrations, resolutions)"
    " VALUES (?, ?, ?, ?) ON CONFLICT (day, prefix) DO UPDATE SET"
    " registrations = t.registrations + excluded.registrations,"
    " resolutions = t.resolutions + excluded.resolutions"
)
SELECT_VERSIONS = "SELECT time, actor, action, record FROM {s}.versions WHERE key = ? ORDER BY id"


@dataclass(frozen=True, slots=True)
class Op:
    """One statement for the engine to run: ``execute`` answers the rows it touched,
    ``fetchrow`` the first row (a tuple) or None."""

    kind: str
    sql: str
    args: tuple[Any, ...] = ()


def day_of(ts: float) -> str:
    """The UTC day of a time, as statistics count it."""
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def apply_effects(
    effects: Effects,
    *,
    now: int,
    serial: int,
    encode_record: Callable[[Sequence[HandleValue]], bytes],
) -> Generator[Op, Any, None]:
    """The statements that apply ``effects`` after the change logged as ``serial``.

    Runs inside the engine's transaction, after the transaction-log row: on PostgreSQL that
    row's lock serialises writers, so the audit head read here is the latest.
    """
    for st in effects.statements:
        touched = yield Op("execute", st.sql, st.args)
        if st.expect is not None and touched != st.expect:
            raise st.refusal(touched)
    for v in effects.versions:
        record = None if v.values is None else encode_record(v.values)
        key, at = handle_key(v.handle), v.time if v.time is not None else now
        row = (key, v.handle, at, v.actor, v.action, record)
        if v.first_only:
            yield Op("execute", INSERT_FIRST_VERSION, (*row, key))
        else:
            yield Op("execute", INSERT_VERSION, row)
    if effects.audit:
        head = yield Op("fetchrow", AUDIT_HEAD)
        seq, prev = (int(head[0]) + 1, head[1]) if head else (1, GENESIS)
        for e in effects.audit:
            digest = entry_digest(prev, seq, now, e.actor, e.action, e.target, e.before, e.after)
            yield Op(
                "execute",
                INSERT_AUDIT,
                (seq, now, e.actor, e.action, e.target, e.before, e.after, prev, digest),
            )
            seq, prev = seq + 1, digest
        yield Op("execute", SET_META, (HEAD_KEY, f"{seq - 1}:{prev}"))
    for (day, prefix), (regs, res) in _merged(effects.counts, day_of(now)).items():
        yield Op("execute", ADD_COUNT, (day, prefix, regs, res))
    if effects.states_changed:
        yield Op("execute", SET_META, (STATE_VERSION_KEY, str(serial)))


def _merged(counts: Sequence[Count], today: str) -> dict[tuple[str, str], tuple[int, int]]:
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for c in counts:
        k = (c.day or today, handle_key(c.prefix))
        regs, res = out.get(k, (0, 0))
        out[k] = (regs + c.registrations, res + c.resolutions)
    return out


def registration_counts(handles: Sequence[str]) -> tuple[Count, ...]:
    """One registration per new identifier, counted under its prefix."""
    per: dict[str, int] = {}
    for h in handles:
        if "/" in h:
            prefix = prefix_part(h)
            per[prefix] = per.get(prefix, 0) + 1
    return tuple(Count(p, registrations=n) for p, n in per.items())
