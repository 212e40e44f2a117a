"""A parent's children: allocating a prefix, enrolling the child, publishing, suspending.

The world finds a child through its prefix handle at the parent: ``0.NA/<child prefix>``
holding the child's HS_SITE (index 1) and the child's admin key (HS_PUBKEY, index 300),
administered by the parent's operator (HS_ADMIN, index 100). Suspending a child deletes that
record (and the parent stops referring to it), so resolvers stop finding the child; resuming
writes it back from what the child enrolled with.

**One truth.** The children live in the node's store (the ``children`` table,
``store.governance``), and every change of a child's state is applied in the same
transaction as the prefix handle it publishes or withdraws: the record is written through
the write service (``service.admin``) as the node operator -- so permissions, the features'
policies, history and audit apply as to any other write -- with the children-table change as
its ``extra`` effects, guarded (``expect=1`` on the state it leaves). A crash, a lost race or
a refused write therefore never leaves a published record for a child the table calls
suspended, nor an enrolled child without its record.

**Review before delegation.** A child prefix that lies in the registry's space (its coding
rules accept it: an enterprise prefix under this node's own) is an enterprise prefix like any
other, and the registry reviews those: the organisation applies and is approved, the prefix
applied for and approved. Delegating it is the other way of allocating it, so it needs the
same review -- its ``prefixes`` row must be ``approved`` -- and moves that row to
``delegated`` in the transaction that creates the child, guarded on ``approved``. The
registry's own ``allocate`` accepts only ``approved``, so a delegated prefix is never homed
here as well and the child's published HS_SITE is never overwritten; and a prefix the
registry allocated cannot be delegated. A prefix outside the registry's space (the root
delegating top-level prefixes, a top-level node its secondaries when their codes are not
enterprise codes) is allocated directly, as before.

Enrolment tokens: ``allocate`` prints a random token once and keeps only its SHA-256, with an
expiry; ``enrol`` accepts it once. The child proves nothing else at enrolment -- it has no
identity at the parent yet, which is why enrolment is an HTTP call carrying the token and
not a Handle admin request (those need an identity the parent already knows). In return the
child gets a report token (also stored hashed) that authenticates its reports.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from idnode.codes import AdminPermission, ResponseCode
from idnode.crypto.keys import encode_public_key, public_key_from_pem
from idnode.errors import HandleNotFound, IdnodeError
from idnode.hierarchy.roles import ROOT_PREFIX
from idnode.model import HS_ADMIN, HS_PUBKEY, HS_SITE, NA_PREFIX, HandleValue, handle_key
from idnode.names import PrefixSet, parent_prefix
from idnode.runtime import Random, token_urlsafe
from idnode.store.effects import Effects, Statement
from idnode.wire.admin import AdminRecord, encode_admin
from idnode.wire.site import SiteInfo, decode_site

if TYPE_CHECKING:
    from idnode.auth.identity import Identity
    from idnode.service.admin import AdminService
    from idnode.store.base import Atomic, Store

ALLOCATED, ENROLLED, SUSPENDED = "allocated", "enrolled", "suspended"
# the registry's prefix states delegation reads and sets (``registry.prefixes``; a feature
# imports no other feature, so the names are repeated here and a test keeps them equal)
PREFIX_APPROVED, PREFIX_DELEGATED = "approved", "delegated"
TOKEN_PREFIX = "idnenrol_"
SITE_INDEX, ADMIN_VALUE_INDEX, PUBKEY_INDEX = 1, 100, 300
_ALL_ADMIN = AdminPermission(0xFFF)
ACTION = "hierarchy"  # the transaction-log action of a change that writes no identifier

# -- the store's tables (``store.governance``), in portable SQL (``store.portable``) ----------
VERSION_KEY = "hierarchy_version"  # meta: bumped by every change to children or reports
BUMP_VERSION = Statement(
    "INSERT INTO {s}.meta AS m (key, value) VALUES (?, '1') ON CONFLICT (key)"
    " DO UPDATE SET value = CAST(CAST(m.value AS bigint) + 1 AS text)",
    (VERSION_KEY,),
)
CHILD_ROW = "SELECT * FROM {s}.children WHERE key = ?"
INSERT_CHILD = (
    "INSERT INTO {s}.children AS c (key, prefix, state, token_hash, token_expires, created,"
    " updated) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
    " token_hash = excluded.token_hash, token_expires = excluded.token_expires,"
    " updated = excluded.updated WHERE c.state = excluded.state"
)
ENROL_CHILD = (
    "UPDATE {s}.children SET state = ?, token_hash = NULL, report_hash = ?, site = ?,"
    " public_key = ?, name = ?, role = ?, updated = ? WHERE key = ? AND state = ?"
    " AND token_hash = ?"
)
SET_CHILD_STATE = (
    "UPDATE {s}.children SET state = ?, reason = ?, updated = ? WHERE key = ? AND state = ?"
)
LIVE_CHILDREN = "SELECT key, prefix, state, site FROM {s}.children WHERE state IN (?, ?)"
INSERT_STATE_CHANGE = (
    "INSERT INTO {s}.state_changes (kind, target, time, actor, from_state, to_state, reason)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
PREFIX_ROW = "SELECT * FROM {s}.prefixes WHERE key = ?"


class DelegationError(IdnodeError):
    """A delegation request that cannot be carried out (bad prefix, state or site)."""

    code = ResponseCode.INVALID_VALUE


class EnrolmentRefused(IdnodeError):
    """The enrolment token is not recognised, expired or already used."""

    code = ResponseCode.NOT_AUTHORIZED


class _Rules(Protocol):
    def check(self, prefix: str) -> str: ...


class _PrefixTransitions(Protocol):
    def transition(
        self, actor: str, before: dict[str, Any], allowed: tuple[str, ...], state: str, reason: str
    ) -> Effects: ...


class PrefixReview(Protocol):
    """What delegation needs of the registry: its coding rules (``rules.check`` accepts the
    prefixes the registry reviews) and its guarded prefix-state transitions. The
    composition root's registry is passed in; a feature imports no other feature."""

    @property
    def rules(self) -> _Rules: ...

    @property
    def prefixes(self) -> _PrefixTransitions: ...


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(random: Random, kind: str = TOKEN_PREFIX) -> str:
    return kind + token_urlsafe(random, 32)


def child_state_change(
    prefix: str, actor: str, old: str | None, new: str, reason: str, now: int
) -> Statement:
    """The ``state_changes`` row of one child transition (kind ``child``): who, when, why."""
    return Statement(INSERT_STATE_CHANGE, ("child", prefix, now, actor, old, new, reason))


@dataclass(frozen=True, slots=True)
class LiveChild:
    """What the wire path needs to refer a handle to a child."""

    prefix: str
    state: str
    site: bytes


def _endpoints(site: SiteInfo) -> set[tuple[str, int]]:
    return {(str(s.connect_address), i.port) for s in site.servers for i in s.interfaces}


async def _nothing() -> None:
    return None


class Delegations:
    """The children of one node, in its store, changed through its write service.

    ``operator`` is the node operator identity the prefix handles are written as;
    ``review`` the registry (None on a node without one: nothing is reviewed);
    ``on_change`` is awaited after every change this process makes, so its in-memory copy
    (``Hierarchy.reload``) never reads its own writes late.
    """

    def __init__(
        self,
        store: Store,
        admin: AdminService,
        *,
        operator: Identity,
        own_site: bytes,
        homed: PrefixSet,
        clock: Callable[[], float],
        random: Random,
        token_ttl: int = 86400,
        review: PrefixReview | None = None,
        on_change: Callable[[], Awaitable[None]] = _nothing,
    ) -> None:
        self.store, self.admin, self.operator = store, admin, operator
        self.own_site, self.homed, self.review = own_site, homed, review
        self.clock, self.random = clock, random
        self.token_ttl = token_ttl
        self.on_change = on_change

    def now(self) -> int:
        return int(self.clock())

    # -- allocation ---------------------------------------------------------------------
    def check_child_prefix(self, prefix: str) -> str:
        """A child prefix sits strictly under one this node homes (the root: any prefix)."""
        prefix = prefix.strip()
        if not prefix or "/" in prefix or any(c.isspace() for c in prefix):
            raise DelegationError(f"invalid prefix {prefix!r}")
        key = handle_key(prefix)
        homed = set(self.homed)
        if key in homed:
            raise DelegationError(f"{prefix} is homed by this node itself")
        if handle_key(ROOT_PREFIX) in homed and key != handle_key(ROOT_PREFIX):
            return prefix
        parent = parent_prefix(key)
        if not parent or not self.homed.homes_prefix(parent):
            raise DelegationError(f"{prefix} is not under a prefix this node homes ({homed})")
        return prefix

    def reviewed(self, prefix: str) -> bool:
        """Whether ``prefix`` lies in the registry's space, so delegating it needs review."""
        if self.review is None:
            return False
        try:
            self.review.rules.check(prefix)
        except IdnodeError:
            return False
        return True

    async def allocate(
        self, prefix: str, *, ttl: int | None = None, actor: str = "console"
    ) -> dict[str, Any]:
        """Reserve ``prefix`` for a child; the returned token is shown once, stored hashed.

        Allocating again before the child enrols issues a new token (the old one stops
        working). A prefix in the registry's space must have been approved by its review;
        its ``prefixes`` row becomes ``delegated`` in the same transaction."""
        prefix = self.check_child_prefix(prefix)
        key, token, now = handle_key(prefix), new_token(self.random), self.now()
        expires = now + (self.token_ttl if ttl is None else ttl)
        async with self.store.atomic(ACTION, f"child {prefix}") as tx:
            old = await tx.fetchrow(CHILD_ROW, key)
            if old is not None and old["state"] != ALLOCATED:
                raise DelegationError(f"{prefix} is already {old['state']}")
            effects = Effects(statements=(BUMP_VERSION,))
            if self.reviewed(prefix):
                effects += await self._delegate(tx, prefix, actor)
            if old is None:
                effects += Effects(
                    statements=(child_state_change(prefix, actor, None, ALLOCATED, "", now),)
                )
            args = (key, prefix, ALLOCATED, token_hash(token), expires, now, now)
            if await tx.execute(INSERT_CHILD, *args) != 1:
                raise DelegationError(f"{prefix} changed meanwhile; try again")
            await tx.apply(effects)
        await self.on_change()
        return {"prefix": prefix, "token": token, "expires": expires}

    async def _delegate(self, tx: Atomic, prefix: str, actor: str) -> Effects:
        """The registry's ``approved`` -> ``delegated`` transition of ``prefix`` (nothing if
        an earlier allocation of this child made it already), or a refusal naming the review
        the prefix still needs."""
        assert self.review is not None
        row = await tx.fetchrow(PREFIX_ROW, handle_key(prefix))
        state = None if row is None else row["state"]
        if state == PREFIX_DELEGATED:
            return Effects()
        if state != PREFIX_APPROVED:
            found = "no application for it exists" if row is None else f"it is {state}"
            raise DelegationError(
                f"{prefix} lies in this node's registry space, so it is delegated only after "
                f"real-name review ({found}): the organisation applies and is approved "
                "(`idnode org apply`, `idnode org approve`), then the prefix "
                f"(`idnode prefix apply {prefix} --org-id ID --template T`, "
                f"`idnode prefix approve {prefix}`); then run `idnode child allocate` again"
            )
        return self.review.prefixes.transition(actor, row, (PREFIX_APPROVED,), PREFIX_DELEGATED, "")

    # -- enrolment ----------------------------------------------------------------------
    async def enrol(self, request: dict[str, Any]) -> dict[str, Any]:
        """A child presents its token, prefix, HS_SITE (base64) and admin public key (PEM)."""
        token = request.get("token")
        if not isinstance(token, str) or not token:
            raise EnrolmentRefused("an enrolment token is needed")
        hashed = token_hash(token)
        row = await self.store.query_one("SELECT * FROM {s}.children WHERE token_hash = ?", hashed)
        if row is None:
            raise EnrolmentRefused("enrolment token not recognised")
        if row["state"] != ALLOCATED:
            raise EnrolmentRefused(f"enrolment token already used ({row['prefix']} is enrolled)")
        if row["token_expires"] is not None and row["token_expires"] <= self.clock():
            raise EnrolmentRefused(f"enrolment token for {row['prefix']} expired")
        prefix = request.get("prefix")
        if not isinstance(prefix, str) or handle_key(prefix) != row["key"]:
            raise EnrolmentRefused(f"this token enrols {row['prefix']}, not {prefix!r}")
        site_bytes = self._site(request.get("site"))
        public_key = self._public_key(request.get("public_key"))
        report_token = new_token(self.random, "idnreport_")
        now = self.now()
        enrolled = Statement(
            ENROL_CHILD,
            (
                ENROLLED,
                token_hash(report_token),
                site_bytes,
                public_key,
                str(request.get("name", ""))[:200],
                str(request.get("role", ""))[:40],
                now,
                row["key"],
                ALLOCATED,
                hashed,
            ),
            expect=1,  # another enrolment with the same token won the race
            refused=EnrolmentRefused("enrolment token already used"),
        )
        actor = f"child {row['prefix']} (enrolment token)"
        change = child_state_change(row["prefix"], actor, ALLOCATED, ENROLLED, "", now)
        await self._publish(row["prefix"], site_bytes, public_key, (enrolled, change))
        await self.on_change()
        return {
            "prefix": row["prefix"],
            "prefix_handle": NA_PREFIX + row["prefix"],
            "report_token": report_token,
        }

    def _site(self, raw: object) -> bytes:
        if not isinstance(raw, str):
            raise DelegationError("site: base64 HS_SITE data is needed")
        try:
            data = base64.b64decode(raw, validate=True)
            site = decode_site(data)
        except (binascii.Error, ValueError) as exc:
            raise DelegationError(f"site: not base64: {exc}") from None
        except IdnodeError as exc:
            raise DelegationError(f"site: not HS_SITE data: {exc}") from None
        if not any(i.query for s in site.servers for i in s.interfaces):
            raise DelegationError("site: no server answers queries")
        mine = _endpoints(decode_site(self.own_site))
        loop = sorted(_endpoints(site) & mine)
        if loop:
            host, port = loop[0]
            raise DelegationError(
                f"site: the child's site points at this node ({host}:{port}); "
                "referrals to it would loop"
            )
        return data

    @staticmethod
    def _public_key(raw: object) -> bytes:
        if not isinstance(raw, str):
            raise DelegationError("public_key: a PEM public key is needed")
        try:
            return encode_public_key(public_key_from_pem(raw))
        except (IdnodeError, ValueError) as exc:
            raise DelegationError(f"public_key: {exc}") from None

    # -- publication, suspension ----------------------------------------------------------
    async def _publish(
        self, prefix: str, site: bytes, public_key: bytes, changes: tuple[Statement, ...]
    ) -> None:
        """Write ``0.NA/<prefix>`` through the write service, with ``changes`` to the
        children table in its transaction."""
        admin = AdminRecord(NA_PREFIX + self.operator_prefix, 300, _ALL_ADMIN)
        values = [
            HandleValue(SITE_INDEX, HS_SITE, site),
            HandleValue(ADMIN_VALUE_INDEX, HS_ADMIN, encode_admin(admin)),
            HandleValue(PUBKEY_INDEX, HS_PUBKEY, public_key),
        ]
        extra = Effects(statements=(*changes, BUMP_VERSION))
        await self.admin.create_handle(
            self.operator, NA_PREFIX + prefix, values, overwrite=True, extra=extra
        )

    @property
    def operator_prefix(self) -> str:
        """The prefix whose operator administers the children's prefix handles."""
        return self.operator.handle[len(NA_PREFIX) :]

    async def suspend(
        self, prefix: str, reason: str = "", actor: str = "console"
    ) -> dict[str, Any]:
        """Withdraw the child's prefix handle; the child is ``suspended`` in the same
        transaction (alone, if the handle is already gone)."""
        row, changes = await self._change(prefix, ENROLLED, SUSPENDED, reason, actor)
        change = Effects(
            statements=(*changes, BUMP_VERSION), action=ACTION, target=f"child {row['prefix']}"
        )
        try:
            await self.admin.delete_handle(self.operator, NA_PREFIX + row["prefix"], extra=change)
        except HandleNotFound:  # already gone: the state change still applies
            await self.store.apply(change)
        await self.on_change()
        return {**row, "state": SUSPENDED, "reason": reason}

    async def resume(self, prefix: str, actor: str = "console") -> dict[str, Any]:
        """Publish a suspended child's prefix handle again, from what it enrolled with."""
        row, changes = await self._change(prefix, SUSPENDED, ENROLLED, "", actor)
        await self._publish(row["prefix"], row["site"], row["public_key"], changes)
        await self.on_change()
        return {**row, "state": ENROLLED, "reason": ""}

    async def _change(
        self, prefix: str, allowed: str, state: str, reason: str, actor: str
    ) -> tuple[dict[str, Any], tuple[Statement, ...]]:
        """The child's row and the guarded statements moving it from ``allowed`` to
        ``state`` (refused if another change got there first)."""
        row = await self.get(prefix)
        if row is None:
            raise DelegationError(f"{prefix} is not a child of this node")
        if row["state"] != allowed:
            raise DelegationError(f"{prefix} is {row['state']}; needs {allowed}")
        now = self.now()
        guarded = Statement(
            SET_CHILD_STATE,
            (state, reason, now, row["key"], allowed),
            expect=1,
            refused=DelegationError(f"{row['prefix']} changed meanwhile; try again"),
        )
        change = child_state_change(row["prefix"], actor, allowed, state, reason, now)
        return row, (guarded, change)

    # -- reads ----------------------------------------------------------------------------
    async def get(self, prefix: str) -> dict[str, Any] | None:
        return await self.store.query_one(CHILD_ROW, handle_key(prefix))

    async def list(self) -> list[dict[str, Any]]:
        rows = await self.store.query("SELECT * FROM {s}.children ORDER BY key")
        return [
            {
                k: v
                for k, v in r.items()
                if k not in ("token_hash", "report_hash", "site", "public_key")
            }
            for r in rows
        ]

    async def live(self) -> dict[str, LiveChild]:
        """Enrolled and suspended children by prefix key, for the wire path's referrals."""
        rows = await self.store.query(LIVE_CHILDREN, ENROLLED, SUSPENDED)
        return {r["key"]: LiveChild(r["prefix"], r["state"], bytes(r["site"] or b"")) for r in rows}
