"""A parent's children: allocating a prefix, enrolling the child, publishing, suspending.

The world finds a child through its prefix handle at the parent: ``0.NA/<child prefix>``
holding the child's HS_SITE (index 1) and the child's admin key (HS_PUBKEY, index 300),
administered by the parent's operator (HS_ADMIN, index 100). Suspending a child deletes that
record (and the parent stops referring to it), so resolvers stop finding the child; resuming
writes it back from what the child enrolled with.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from idnode.codes import AdminPermission, ResponseCode
from idnode.crypto.keys import encode_public_key, public_key_from_pem
from idnode.errors import IdnodeError
from idnode.hierarchy.db import HierarchyDB
from idnode.hierarchy.roles import ROOT_PREFIX
from idnode.model import HS_ADMIN, HS_PUBKEY, HS_SITE, NA_PREFIX, HandleValue, handle_key
from idnode.runtime import Random, token_urlsafe
from idnode.service.names import PrefixSet
from idnode.store.base import Store
from idnode.wire.admin import AdminRecord, encode_admin
from idnode.wire.site import SiteInfo, decode_site

ALLOCATED, ENROLLED, SUSPENDED = "allocated", "enrolled", "suspended"
TOKEN_PREFIX = "idnenrol_"
SITE_INDEX, ADMIN_VALUE_INDEX, PUBKEY_INDEX = 1, 100, 300
_ALL_ADMIN = AdminPermission(0xFFF)


class DelegationError(IdnodeError):
    """A delegation request that cannot be carried out (bad prefix, state or site)."""

    code = ResponseCode.INVALID_VALUE


class EnrolmentRefused(IdnodeError):
    """The enrolment token is not recognised, expired or already used."""

    code = ResponseCode.NOT_AUTHORIZED


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token(random: Random, kind: str = TOKEN_PREFIX) -> str:
    return kind + token_urlsafe(random, 32)


@dataclass(frozen=True, slots=True)
class LiveChild:
    """What the wire path needs to refer a handle to a child."""

    prefix: str
    state: str
    site: bytes


def _endpoints(site: SiteInfo) -> set[tuple[str, int]]:
    return {(str(s.connect_address), i.port) for s in site.servers for i in s.interfaces}


class Delegations:
    def __init__(
        self,
        db: HierarchyDB,
        store: Store,
        *,
        own_site: bytes,
        homed: PrefixSet,
        operator_prefix: str,
        clock: Callable[[], float],
        random: Random,
        token_ttl: int = 86400,
    ) -> None:
        self.db, self.store, self.own_site, self.homed = db, store, own_site, homed
        self.operator_prefix = operator_prefix
        self.clock, self.random = clock, random
        self.token_ttl = token_ttl

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
        parent = key.rpartition(".")[0]
        if not parent or not self.homed.homes_prefix(parent):
            raise DelegationError(f"{prefix} is not under a prefix this node homes ({homed})")
        return prefix

    def allocate(self, prefix: str, *, ttl: int | None = None) -> dict[str, Any]:
        """Reserve ``prefix`` for a child; the returned token is shown once, stored hashed."""
        prefix = self.check_child_prefix(prefix)
        token = new_token(self.random)
        now = int(self.clock())
        expires = now + (self.token_ttl if ttl is None else ttl)
        with self.db.tx() as c:
            row = c.execute("SELECT state FROM children WHERE key = ?", (handle_key(prefix),))
            old = row.fetchone()
            if old is not None and old["state"] != ALLOCATED:
                raise DelegationError(f"{prefix} is already {old['state']}")
            c.execute(
                "INSERT INTO children (key, prefix, state, token_hash, token_expires, created,"
                " updated) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
                " token_hash = excluded.token_hash, token_expires = excluded.token_expires,"
                " updated = excluded.updated",
                (handle_key(prefix), prefix, ALLOCATED, token_hash(token), expires, now, now),
            )
        return {"prefix": prefix, "token": token, "expires": expires}

    # -- enrolment ----------------------------------------------------------------------
    async def enrol(self, request: dict[str, Any]) -> dict[str, Any]:
        """A child presents its token, prefix, HS_SITE (base64) and admin public key (PEM)."""
        token = request.get("token")
        if not isinstance(token, str) or not token:
            raise EnrolmentRefused("an enrolment token is needed")
        row = self.db.one("SELECT * FROM children WHERE token_hash = ?", (token_hash(token),))
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
        now = int(self.clock())
        with self.db.tx() as c:
            done = c.execute(
                "UPDATE children SET state = ?, token_hash = NULL, report_hash = ?, site = ?,"
                " public_key = ?, name = ?, role = ?, updated = ? WHERE key = ? AND state = ?",
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
                ),
            ).rowcount
            if not done:  # another enrolment with the same token won the race
                raise EnrolmentRefused("enrolment token already used")
        await self.publish(row["prefix"], site_bytes, public_key)
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
    async def publish(self, prefix: str, site: bytes, public_key: bytes) -> None:
        now = int(self.clock())
        admin = AdminRecord(NA_PREFIX + self.operator_prefix, 300, _ALL_ADMIN)
        values = [
            HandleValue(SITE_INDEX, HS_SITE, site, timestamp=now),
            HandleValue(ADMIN_VALUE_INDEX, HS_ADMIN, encode_admin(admin), timestamp=now),
            HandleValue(PUBKEY_INDEX, HS_PUBKEY, public_key, timestamp=now),
        ]
        await self.store.create_handle(NA_PREFIX + prefix, values, overwrite=True)

    async def suspend(self, prefix: str, reason: str = "") -> dict[str, Any]:
        row = self._change(prefix, (ENROLLED,), SUSPENDED, reason)
        try:
            await self.store.delete_handle(NA_PREFIX + row["prefix"])
        except IdnodeError:
            pass  # already gone
        return row

    async def resume(self, prefix: str) -> dict[str, Any]:
        row = self._change(prefix, (SUSPENDED,), ENROLLED, "")
        await self.publish(row["prefix"], row["site"], row["public_key"])
        return row

    def _change(
        self, prefix: str, allowed: tuple[str, ...], state: str, reason: str
    ) -> dict[str, Any]:
        with self.db.tx() as c:
            found = c.execute("SELECT * FROM children WHERE key = ?", (handle_key(prefix),))
            row = found.fetchone()
            if row is None:
                raise DelegationError(f"{prefix} is not a child of this node")
            if row["state"] not in allowed:
                raise DelegationError(f"{prefix} is {row['state']}; needs {' or '.join(allowed)}")
            c.execute(
                "UPDATE children SET state = ?, reason = ?, updated = ? WHERE key = ?",
                (state, reason, int(self.clock()), row["key"]),
            )
        return {**dict(row), "state": state}

    def get(self, prefix: str) -> dict[str, Any] | None:
        return self.db.one("SELECT * FROM children WHERE key = ?", (handle_key(prefix),))

    def list(self) -> list[dict[str, Any]]:
        rows = self.db.all("SELECT * FROM children ORDER BY key")
        return [
            {
                k: v
                for k, v in r.items()
                if k not in ("token_hash", "report_hash", "site", "public_key")
            }
            for r in rows
        ]

    def live(self) -> dict[str, LiveChild]:
        """Enrolled and suspended children by prefix key, for the wire path's referrals."""
        rows = self.db.all(
            "SELECT key, prefix, state, site FROM children WHERE state IN (?, ?)",
            (ENROLLED, SUSPENDED),
        )
        return {r["key"]: LiveChild(r["prefix"], r["state"], r["site"] or b"") for r in rows}
