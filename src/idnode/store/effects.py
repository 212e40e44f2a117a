"""What a write does besides changing identifiers, applied by the store in the same transaction.

Everything a node knows lives in its store: organisations, accounts, prefixes and their
states, lifecycle and tombstones, history, the audit chain, statistics, delegations, import
jobs. A write that changes an identifier changes some of these too (a version kept, an audit
entry, a registration counted), and a crash must never leave one without the other: so the
caller describes those changes as ``Effects`` and hands them to the store's write method,
which applies them after the identifier change and the transaction-log row, before COMMIT.

Effects are data, not code, so both engines apply them the same way (SQLite on its writer
thread, PostgreSQL on one pooled connection) and the encrypting store can seal the values a
``Version`` keeps, exactly as it seals the record itself.

Statements are portable SQL (see ``store.portable``): tables as ``{s}.name`` and ``?``
placeholders, in the subset SQLite and PostgreSQL share (``INSERT ... ON CONFLICT``,
``RETURNING``). ``expect`` turns a lost race into a refusal of the whole transaction: a state
change written as ``UPDATE ... WHERE state = 'approved'`` with ``expect=1`` cannot apply twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from idnode.errors import IdnodeError
from idnode.model import HandleValue


class EffectRefused(IdnodeError):
    """A statement's ``expect`` did not hold: the state it guarded changed meanwhile."""


@dataclass(frozen=True, slots=True)
class Statement:
    """One portable SQL statement; with ``expect``, the rows it must touch or the whole
    transaction is refused with ``refused`` (default: ``EffectRefused``)."""

    sql: str
    args: tuple[Any, ...] = ()
    expect: int | None = None
    refused: IdnodeError | None = None

    def refusal(self, touched: int) -> IdnodeError:
        if self.refused is not None:
            return self.refused
        return EffectRefused(f"expected {self.expect} row(s) to change, {touched} did")


@dataclass(frozen=True, slots=True)
class Version:
    """A version of a record kept in the history (``values`` None: deleted, or a change of
    state with no values). ``first_only``: kept only if the record has no version yet (the
    original a first change replaces). ``time`` None: the transaction's time."""

    handle: str
    action: str
    actor: str
    values: tuple[HandleValue, ...] | None
    time: int | None = None
    first_only: bool = False


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry for the audit chain; the store gives it its seq, time and chain digest.
    ``before`` and ``after`` are digests (``audit_chain.state_digest``), never the state."""

    actor: str
    action: str
    target: str
    before: str = ""
    after: str = ""


@dataclass(frozen=True, slots=True)
class Count:
    """Statistics added up per (UTC day, prefix); ``day`` None: the transaction's day."""

    prefix: str
    registrations: int = 0
    resolutions: int = 0
    day: str | None = None


@dataclass(frozen=True, slots=True)
class Effects:
    statements: tuple[Statement, ...] = ()
    versions: tuple[Version, ...] = ()
    audit: tuple[AuditEntry, ...] = ()
    counts: tuple[Count, ...] = ()
    # lifecycle or prefix states changed: every process reloads what its resolution gate holds
    states_changed: bool = False
    # the transaction-log row of a change that writes no identifier (governance only)
    action: str = "registry"
    target: str = ""

    def __bool__(self) -> bool:
        return bool(
            self.statements or self.versions or self.audit or self.counts or self.states_changed
        )

    def __add__(self, other: Effects) -> Effects:
        return Effects(
            self.statements + other.statements,
            self.versions + other.versions,
            self.audit + other.audit,
            self.counts + other.counts,
            self.states_changed or other.states_changed,
            self.action if self.target else other.action,
            self.target or other.target,
        )


NO_EFFECTS = Effects()
