"""The registry's part in every write: templates and lifecycle before, history, audit and
statistics in the same transaction (``service.policies``).

**History.** The first change to a record also keeps the version it replaced ("original"),
then each new version is kept with its actor, time and action. A record nobody has changed
since it was registered in bulk has one version, the current one in the store, so bulk
writes keep no history rows. With encryption at rest the store seals the non-public values of
every kept version as it seals the record.

**Audit.** One entry per write (``handle.create`` ...; one ``handle.load`` per bulk write),
holding SM3 digests of the record before and after, never the values.

**Statistics.** A new identifier is one registration under its prefix, counted in the
write's transaction: exact whatever the number of workers or hosts, and never lost or
doubled by a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from idnode.auth.identity import Identity
from idnode.model import HandleValue, handle_key
from idnode.names import prefix_part
from idnode.registry import record_templates
from idnode.registry.states import GovernanceStates
from idnode.service.policies import BulkWrite, Write
from idnode.store.audit_chain import state_digest
from idnode.store.effects import AuditEntry, Effects, Version
from idnode.store.governance import registration_counts

NA = "0.NA"


def actor_of(who: Identity | None) -> str:
    return str(who) if who is not None else "node"


def record_state(values: Sequence[HandleValue] | None) -> list[Any] | None:
    """A record as the audit digests it: every field of every value, data included."""
    if values is None:
        return None
    return [
        [v.index, v.type, bytes(v.data), int(v.permissions), int(v.ttl_type), v.ttl,
         v.timestamp, [str(r) for r in v.references]]
        for v in values
    ]  # fmt: skip


def newest(values: Sequence[HandleValue], default: int = 0) -> int:
    return max((v.timestamp for v in values), default=default)


class RegistryPolicy:
    def __init__(self, states: GovernanceStates) -> None:
        self.states = states

    def check(self, write: Write) -> None:
        self.states.check_write(write.handle, write.after)

    def effects(self, write: Write) -> Effects:
        actor, handle = actor_of(write.who), write.handle
        versions = []
        if write.before is not None:
            versions.append(
                Version(
                    handle,
                    "original",
                    "",
                    tuple(write.before),
                    time=newest(write.before),
                    first_only=True,
                )  # fmt: skip
            )
        after = None if write.after is None else tuple(write.after)
        versions.append(Version(handle, write.action, actor, after))
        entry = AuditEntry(
            actor,
            f"handle.{write.action}",
            handle,
            state_digest(record_state(write.before)),
            state_digest(record_state(write.after)),
        )
        new = write.before is None and write.after is not None
        counts = registration_counts([handle]) if new and not _is_na(handle) else ()
        return Effects(
            statements=self._template_refs(handle, write.after is None),
            versions=tuple(versions),
            audit=(entry,),
            counts=counts,
        )

    def _template_refs(self, handle: str, deleted: bool) -> tuple[Any, ...]:
        """The record's template version, kept beside it (``record_templates``)."""
        if deleted:
            return (record_templates.unbind(handle),)
        template = self.states.template_of(prefix_part(handle)) if "/" in handle else None
        return () if template is None else record_templates.bind([(handle, template.ref)])

    def check_bulk(self, bulk: BulkWrite) -> None:
        for handle, values in bulk.records:
            self.states.check_write(handle, list(values))
        for prefix in {handle_key(prefix_part(h)) for g in bulk.groups for h, _ in g.rows}:
            self.states.check_prefix_open(prefix, f"identifiers under {prefix}")
        for group in bulk.groups:
            prefixes = {prefix_part(h) for h, _ in group.rows}
            for prefix in prefixes:
                template = self.states.template_of(prefix)
                if template is not None:
                    template.check_layout(group.layout)

    def bulk_effects(self, bulk: BulkWrite) -> Effects:
        if not bulk.handles:
            return Effects()
        prefixes = sorted({prefix_part(h) for h in bulk.handles}, key=handle_key)
        entry = AuditEntry(
            actor_of(bulk.who),
            "handle.load",
            f"{len(bulk.handles)} identifiers under {', '.join(prefixes)}",
            "",
            state_digest(sorted(bulk.handles, key=handle_key)),
        )
        counted = [h for h in bulk.handles if not _is_na(h)]
        refs = []
        ref_of: dict[str, str | None] = {}  # per prefix: a bulk load repeats a few (speed)
        for h in bulk.handles:
            if "/" not in h:
                continue
            prefix = prefix_part(h)
            if prefix not in ref_of:
                template = self.states.template_of(prefix)
                ref_of[prefix] = None if template is None else template.ref
            ref = ref_of[prefix]
            if ref is not None:
                refs.append((h, ref))
        return Effects(
            statements=record_templates.bind(refs),
            audit=(entry,),
            counts=registration_counts(counted),
        )


def _is_na(handle: str) -> bool:
    return handle_key(prefix_part(handle)) == NA
