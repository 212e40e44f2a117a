"""The bookkeeping rows every governance change writes: a state transition and an audit
entry, both applied by the store in the change's own transaction."""

from __future__ import annotations

from typing import Any

from idnode.store.audit_chain import state_digest
from idnode.store.effects import AuditEntry, Statement

INSERT_STATE_CHANGE = (
    "INSERT INTO {s}.state_changes (kind, target, time, actor, from_state, to_state, reason)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def state_change(
    kind: str, target: str, actor: str, old: str | None, new: str, reason: str, now: int
) -> Statement:
    """The row of ``state_changes`` that records one transition."""
    return Statement(INSERT_STATE_CHANGE, (kind, target, now, actor, old, new, reason))


def audit_entry(
    actor: str, action: str, target: str, before: Any = None, after: Any = None
) -> AuditEntry:
    """An audit entry holding digests of the state before and after, never the state."""
    return AuditEntry(actor, action, target, state_digest(before), state_digest(after))
