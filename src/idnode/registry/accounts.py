"""Accounts of the management API: node operators, organisation admins and registrars.

An account authenticates with an API token. Only the token's SHA-256 is kept (tokens are 256
random bits, so a slow hash adds nothing and a direct lookup by hash stays O(1)). Every account
*is* a Handle admin identity, so its rights are HS_ADMIN rights and hold on every path:

* an operator account acts as the node operator identity ``300:0.NA/<node prefix>``;
* an organisation account gets its own handle ``<node prefix>/acct-<name>`` with an HS_SECKEY
  at index 300 (PBKDF2 of the same token) and is listed in its organisation's admin group
  ``<node prefix>/org-<credit code>`` (HS_VLIST at 200). That group is the HS_ADMIN of the
  organisation's prefix handle and of every identifier registered under it, so the registrar
  writes the same records with the same rights whether it calls this API, the REST API
  (Basic ``300:<node prefix>/acct-<name>`` + token) or the binary protocol (secret key answer).

Registrars and organisation admins hold the same Handle rights; what differs is what the
management API lets them do (only an organisation admin may create accounts or apply for
prefixes).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from idnode.auth.identity import Identity
from idnode.auth.secrets import hash_secret, parse_hashed
from idnode.model import HS_ADMIN, HS_SECKEY, HS_VLIST, HandleValue, ValueReference
from idnode.registry.changes import audit_entry
from idnode.registry.errors import Conflict, Forbidden, NotFound, RegistryError, Unauthenticated
from idnode.runtime import token_urlsafe
from idnode.store.effects import Effects, Statement
from idnode.wire.admin import AdminRecord, encode_admin
from idnode.wire.vlist import decode_vlist, encode_vlist

if TYPE_CHECKING:
    from idnode.registry.service import Registry

OPERATOR, ORG_ADMIN, REGISTRAR = "operator", "org_admin", "registrar"
ROLES = (OPERATOR, ORG_ADMIN, REGISTRAR)
# not a stored role: a Handle admin identity signed in to the console (console/handle_signin),
# whose rights are the HS_ADMIN values of the records that name it
HANDLE_ADMIN = "handle_admin"
KEY_INDEX = 300
GROUP_INDEX = 200
TOKEN_ITERATIONS = 10_000  # PBKDF2 of a 256-bit random token: stretching is not what protects it
_EMPTY = encode_vlist([])
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,40}$")
MAX_TTL = 100 * 365 * 86400  # a token lifetime beyond a century is a typo, not a plan


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    role: str
    org_id: int | None
    identity: Identity
    expires_at: int | None

    @property
    def is_operator(self) -> bool:
        return self.role == OPERATOR

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "org_id": self.org_id,
            "identity": str(self.identity),
            "expires_at": self.expires_at,
        }


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


INSERT_ACCOUNT = (
    "INSERT INTO {s}.accounts (name, role, org_id, identity, token_hash, expires_at, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


class Accounts:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg

    def account_handle(self, name: str) -> str:
        return f"{self.reg.node_prefix}/acct-{name}"

    def group_handle(self, credit_code: str) -> str:
        return f"{self.reg.node_prefix}/org-{credit_code}"

    async def authenticate(self, token: str | None) -> Account:
        """The account of a bearer token; Unauthenticated naming the header otherwise."""
        if not token:
            raise Unauthenticated("a bearer token is needed", field="Authorization")
        return await self.authenticate_hash(token_hash(token))

    async def authenticate_hash(self, hashed: str) -> Account:
        """The account whose token hashes to ``hashed``, checked as ``authenticate`` checks a
        token (disabled, expired, organisation suspended): the console's signed session
        carries the hash, so a revoked or rotated token ends its console sessions too."""
        row = await self.reg.store.query_one(
            "SELECT a.*, o.state AS org_state FROM {s}.accounts a"
            " LEFT JOIN {s}.organisations o ON o.id = a.org_id WHERE a.token_hash = ?",
            hashed,
        )
        if row is None or row["disabled"]:
            raise Unauthenticated("unknown or disabled token", field="Authorization")
        if row["expires_at"] is not None and row["expires_at"] <= self.reg.clock():
            raise Unauthenticated("token expired", field="Authorization")
        if row["org_state"] not in (None, "approved"):  # suspended or dissolved (org_control)
            raise Unauthenticated(
                f"organisation {row['org_id']} is {row['org_state']}", field="Authorization"
            )
        return _account(row)

    async def get(self, name: str) -> Account:
        row = await self.reg.store.query_one("SELECT * FROM {s}.accounts WHERE name = ?", name)
        if row is None:
            raise NotFound(f"no account {name!r}", field="name")
        return _account(row)

    async def list(self, org_id: int | None = None) -> list[Account]:
        if org_id is None:
            rows = await self.reg.store.query("SELECT * FROM {s}.accounts ORDER BY id")
        else:
            rows = await self.reg.store.query(
                "SELECT * FROM {s}.accounts WHERE org_id = ? ORDER BY id", org_id
            )
        return [_account(r) for r in rows]

    async def create(
        self,
        actor: str,
        name: str,
        role: str,
        org_id: int | None = None,
        *,
        ttl_seconds: int | None = None,
        by: Account | None = None,
    ) -> tuple[Account, str, dict[str, Any]]:
        """Make an account; returns it, its token (shown once) and how to use it elsewhere.

        ``by`` is the calling account (None: the local operator at the node's console). The
        account row commits with the last write that gives it its rights (its membership of
        the organisation's admin group), so there is never an account without its identity.
        Every input is checked before the first write; should the last write still fail, the
        key handle written before it is removed again, so a refused creation leaves nothing.
        """
        reg = self.reg
        if not isinstance(name, str) or not _NAME.match(name):
            raise RegistryError("2-41 characters of a-z, 0-9 and '-'", field="name")
        if role not in ROLES:
            raise RegistryError(f"must be one of {', '.join(ROLES)}", field="role")
        if by is not None and not by.is_operator:
            if by.role != ORG_ADMIN or role != REGISTRAR or org_id != by.org_id:
                raise Forbidden(
                    "organisation admins may only add registrars to their own organisation",
                    field="role",
                )
        if ttl_seconds is not None and (
            not isinstance(ttl_seconds, int)
            or isinstance(ttl_seconds, bool)
            or not 0 < ttl_seconds <= MAX_TTL
        ):
            raise RegistryError(
                f"must be a number of seconds from 1 to {MAX_TTL}", field="ttl_seconds"
            )
        if await reg.store.query_one("SELECT 1 FROM {s}.accounts WHERE name = ?", name):
            raise Conflict(f"account {name!r} exists", field="name")
        token = "idn_" + token_urlsafe(reg.random, 32)
        now = reg.now()
        expires = None if ttl_seconds is None else now + ttl_seconds
        if role == OPERATOR:
            if org_id is not None:
                raise RegistryError("operators belong to no organisation", field="org_id")
            identity, extra, org = reg.operator, {}, None
        else:
            org = await reg.organisations.get(org_id, field="org_id")
            if org["state"] != "approved":
                raise RegistryError(
                    f"organisation {org_id} is not approved (state {org['state']})",
                    field="org_id",
                )
            await self.ensure_group(org["credit_code"])  # idempotent: an empty group
            identity, extra = await self._make_identity(name, token)
        described = {"name": name, "role": role, "org_id": org_id, "identity": str(identity),
                     "expires_at": expires}  # fmt: skip
        row = Effects(
            statements=(
                Statement(
                    INSERT_ACCOUNT,
                    (name, role, org_id, str(identity), token_hash(token), expires, now),
                    expect=1,
                ),
            ),
            audit=(audit_entry(actor, "account.create", name, None, described),),
            target=f"account {name}",
        )
        if org is None:
            await reg.store.apply(row)
        else:
            try:
                await self.add_to_group(org["credit_code"], identity, extra=row)
            except BaseException:
                await self._forget_identity(identity)
                raise
        return await self.get(name), token, extra

    async def _forget_identity(self, identity: Identity) -> None:
        """Remove a key handle whose account was not created (best effort: a later creation
        of the same name overwrites it anyway)."""
        try:
            await self.reg.admin.delete_handle(self.reg.operator, identity.handle)
        except Exception:  # noqa: BLE001 - the original failure is what the caller must see
            pass

    async def _make_identity(self, name: str, token: str) -> tuple[Identity, dict[str, Any]]:
        """The account's key handle (re-runnable: an interrupted creation is overwritten)."""
        reg = self.reg
        handle = self.account_handle(name)
        seckey = hash_secret(token, iterations=TOKEN_ITERATIONS, random_bytes=reg.random)
        owner = encode_admin(AdminRecord(reg.operator.handle, reg.operator.index))
        await reg.admin.create_handle(
            reg.operator,
            handle,
            [HandleValue(100, HS_ADMIN, owner), HandleValue(KEY_INDEX, HS_SECKEY, seckey, 0x0C)],
            overwrite=True,
        )
        h = parse_hashed(seckey)
        identity = Identity(handle, KEY_INDEX)
        return identity, {
            "identity": str(identity),
            "pbkdf2": {"salt": h.salt.hex(), "iterations": h.iterations, "bits": h.key_bits},
            "rest_basic_user": f"{KEY_INDEX}%3A{handle}",
        }

    async def ensure_group(self, credit_code: str) -> str:
        """The organisation's admin group handle, created (empty) when missing."""
        reg = self.reg
        group = self.group_handle(credit_code)
        if await reg.store.get_handle(group) is None:
            owner = encode_admin(AdminRecord(reg.operator.handle, reg.operator.index))
            await reg.admin.create_handle(
                reg.operator,
                group,
                [HandleValue(100, HS_ADMIN, owner), HandleValue(GROUP_INDEX, HS_VLIST, _EMPTY)],
            )
        return group

    async def add_to_group(
        self, credit_code: str, identity: Identity, *, extra: Effects | None = None
    ) -> None:
        group = await self.ensure_group(credit_code)
        record = await self.reg.store.get_handle(group) or []
        members = next((decode_vlist(v.data) for v in record if v.index == GROUP_INDEX), ())
        ref = ValueReference(identity.handle, identity.index)
        if ref in members and extra is None:
            return
        data = encode_vlist([*members, ref] if ref not in members else members)
        await self.reg.admin.add_values(
            self.reg.operator,
            group,
            [HandleValue(GROUP_INDEX, HS_VLIST, data)],
            overwrite=True,
            extra=extra or Effects(),
        )


def _account(row: Any) -> Account:
    return Account(
        row["id"],
        row["name"],
        row["role"],
        row["org_id"],
        Identity.parse(row["identity"]),
        row["expires_at"],
    )
