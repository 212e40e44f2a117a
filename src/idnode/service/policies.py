"""What features add to every write: checks before it, effects in its transaction.

The write service (``service.admin.AdminService``) is the one way into the store for every
path: the binary protocol, REST, the management API, ``idnode load``, bulk import,
delegation and ``idnode init``. Features do not wrap or bypass it; they hand it policies at
construction (``app.open_node``): the registry's templates, lifecycle, history, audit and
statistics are one ``WritePolicy``. A policy sees each write before it happens (``check``
raises to refuse it) and says what else it causes (``effects``), which the store applies in
the same transaction, so a crash can never keep a write and lose its history or its count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from idnode.auth.identity import Identity
from idnode.model import HandleValue
from idnode.store.base import RowGroup
from idnode.store.effects import NO_EFFECTS, Effects


@dataclass(frozen=True, slots=True)
class Write:
    """One identifier write as policies see it (``before`` None: new; ``after`` None: gone)."""

    who: Identity | None
    action: str  # create | delete | add | modify | remove
    handle: str
    before: list[HandleValue] | None
    after: list[HandleValue] | None


@dataclass(frozen=True, slots=True)
class BulkWrite:
    """Many new identifiers in one transaction (``idnode load``, bulk import).

    ``records`` holds each record as values when the caller has them (``load``); an import
    passes ``groups`` instead (a layout per combination of fields), its rows already checked
    against the same template by the import's own parser (``registry.imports``)."""

    who: Identity | None
    handles: Sequence[str]
    records: Sequence[tuple[str, Sequence[HandleValue]]] = ()
    groups: Sequence[RowGroup] = ()
    overwrite: bool = False


class WritePolicy(Protocol):
    def check(self, write: Write) -> None:
        """Raise an ``IdnodeError`` to refuse the write."""

    def effects(self, write: Write) -> Effects:
        """What the write causes besides itself, applied in its transaction."""

    def check_bulk(self, bulk: BulkWrite) -> None: ...

    def bulk_effects(self, bulk: BulkWrite) -> Effects: ...


def combined_effects(policies: Sequence[WritePolicy], write: Write) -> Effects:
    out = NO_EFFECTS
    for p in policies:
        out = out + p.effects(write)
    return out
