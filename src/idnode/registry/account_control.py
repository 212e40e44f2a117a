"""Account control: revoke a token, disable and re-enable an account, rotate its key.

An account's credential lives in two places that must agree (``accounts.py``): the token's
SHA-256 in the ``accounts`` row (the management API) and PBKDF2 of the same token as the
HS_SECKEY at index 300 of its key handle ``<node prefix>/acct-<name>`` (REST Basic and
challenge answers on the binary protocol). Every change here rewrites both, with its audit
entry, in **one** transaction: the key handle is rewritten through the write service and the
row change and audit entry ride along as its extra effects. So a revoked token stops working
on every worker at once (each request reads the row, each wire authentication reads the
key handle from the store), and on every path.

* **revoke-token**: the token dies; the account stays enabled but holds no credential until
  ``rotate`` gives it a new one (the response to a leaked token);
* **disable**: the account is refused whatever it presents, the credential goes as with a
  revocation, and the account leaves its organisation's admin group, so even a binary
  session it opened before loses its rights at once;
* **enable**: the account comes back with a *new* token (the old one is never revived: it
  may be why the account was disabled) and rejoins its group;
* **rotate**: a new token and key replace the old ones, which fail from then on.

An operator account acts as the node operator identity, whose key is the node's own
(``idnode init``): only its API token is touched here. Who may do what: operators on every
account; an organisation admin on its own organisation's registrars and on itself; any
account may rotate its own key. Nobody disables or revokes their own account (that is how
the last operator locks everyone out).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idnode.auth.secrets import hash_secret, parse_hashed
from idnode.model import HS_ADMIN, HS_SECKEY, HS_VLIST, HandleValue, ValueReference
from idnode.registry.accounts import (
    GROUP_INDEX,
    KEY_INDEX,
    ORG_ADMIN,
    REGISTRAR,
    TOKEN_ITERATIONS,
    Account,
    token_hash,
)
from idnode.registry.changes import audit_entry
from idnode.registry.errors import Conflict, Forbidden, RegistryError
from idnode.runtime import token_urlsafe
from idnode.store.effects import Effects, Statement
from idnode.wire.admin import AdminRecord, encode_admin
from idnode.wire.vlist import decode_vlist, encode_vlist

if TYPE_CHECKING:
    from idnode.registry.service import Registry

# A token hash no token has (SHA-256 hex never contains ':'); unique per revocation because
# the column is UNIQUE.
DEAD_PREFIX = "dead:"
SET_CREDENTIAL = (
    "UPDATE {s}.accounts SET token_hash = ?, disabled = ? WHERE id = ? AND token_hash = ?"
)


class AccountControl:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg

    # -- who may ----------------------------------------------------------------------------
    def _authorize(self, by: Account | None, target: Account, action: str) -> None:
        if by is None or by.is_operator:
            if by is not None and by.id == target.id and action in ("disable", "revoke-token"):
                raise Forbidden(f"you cannot {action} your own account", field="name")
            return
        if by.id == target.id:
            if action == "rotate":
                return
            raise Forbidden(f"you cannot {action} your own account", field="name")
        if by.role == ORG_ADMIN and target.role == REGISTRAR and target.org_id == by.org_id:
            return
        raise Forbidden(
            "operators control every account; organisation admins their own registrars",
            field="name",
        )

    # -- the four actions -------------------------------------------------------------------
    async def revoke_token(self, by: Account | None, name: str) -> dict[str, Any]:
        target = await self.reg.accounts.get(name)
        self._authorize(by, target, "revoke-token")
        await self._cut(by, target, "account.revoke-token", disabled=False)
        return await self._describe(name)

    async def disable(self, by: Account | None, name: str) -> dict[str, Any]:
        target = await self.reg.accounts.get(name)
        self._authorize(by, target, "disable")
        if await self._disabled(target):
            raise Conflict(f"account {name} is already disabled", field="name")
        await self._cut(by, target, "account.disable", disabled=True)
        await self._membership(target, member=False)
        return await self._describe(name)

    async def enable(self, by: Account | None, name: str) -> dict[str, Any]:
        """Re-enable with a new token, shown once in the answer."""
        target = await self.reg.accounts.get(name)
        self._authorize(by, target, "enable")
        if not await self._disabled(target):
            raise Conflict(f"account {name} is not disabled", field="name")
        await self._organisation_open(target)
        token, extra = await self._issue(by, target, "account.enable")
        await self._membership(target, member=True)
        return {**await self._describe(name), "token": token, **extra}

    async def rotate(self, by: Account | None, name: str) -> dict[str, Any]:
        """A new token and key; the old ones fail from now on."""
        target = await self.reg.accounts.get(name)
        self._authorize(by, target, "rotate")
        if await self._disabled(target):
            raise Conflict(f"account {name} is disabled; enable it instead", field="name")
        token, extra = await self._issue(by, target, "account.rotate")
        await self._membership(target, member=True)  # after a revocation it left nothing out
        return {**await self._describe(name), "token": token, **extra}

    async def disable_all(self, by: Account | None, org_id: int) -> list[str]:
        """Disable every enabled account of an organisation (its dissolution)."""
        rows = await self.reg.store.query(
            "SELECT name FROM {s}.accounts WHERE org_id = ? AND disabled = 0 ORDER BY id", org_id
        )
        for r in rows:
            target = await self.reg.accounts.get(r["name"])
            await self._cut(by, target, "account.disable", disabled=True)
            await self._membership(target, member=False)
        return [r["name"] for r in rows]

    # -- the writes ---------------------------------------------------------------------------
    async def _cut(
        self, by: Account | None, target: Account, action: str, *, disabled: bool
    ) -> None:
        """The token and key stop working, in one transaction with the audit entry."""
        reg = self.reg
        dead = DEAD_PREFIX + token_urlsafe(reg.random, 24)
        row = await self._row(target)
        effects = self._effects(by, target, action, row, dead, disabled)
        if target.is_operator:
            await reg.store.apply(effects)
            return
        await reg.admin.create_handle(
            reg.operator, target.identity.handle, [self._owner()], overwrite=True, extra=effects
        )

    async def _issue(
        self, by: Account | None, target: Account, action: str
    ) -> tuple[str, dict[str, Any]]:
        """A new token (and key), in one transaction with the audit entry."""
        reg = self.reg
        token = "idn_" + token_urlsafe(reg.random, 32)
        row = await self._row(target)
        effects = self._effects(by, target, action, row, token_hash(token), False)
        if target.is_operator:
            await reg.store.apply(effects)
            return token, {}
        seckey = hash_secret(token, iterations=TOKEN_ITERATIONS, random_bytes=reg.random)
        key = HandleValue(KEY_INDEX, HS_SECKEY, seckey, 0x0C)
        await reg.admin.create_handle(
            reg.operator, target.identity.handle, [self._owner(), key], overwrite=True,
            extra=effects,
        )  # fmt: skip
        h = parse_hashed(seckey)
        return token, {
            "identity": str(target.identity),
            "pbkdf2": {"salt": h.salt.hex(), "iterations": h.iterations, "bits": h.key_bits},
            "rest_basic_user": f"{KEY_INDEX}%3A{target.identity.handle}",
        }

    def _effects(
        self, by: Account | None, target: Account, action: str, row: dict[str, Any],
        new_hash: str, disabled: bool,
    ) -> Effects:  # fmt: skip
        """The row change, guarded by the hash read before (a concurrent change refuses this
        one), and its audit entry (digests of the state, never a token)."""
        actor = self.reg.actor(by)
        guard = Statement(
            SET_CREDENTIAL,
            (new_hash, int(disabled), target.id, row["token_hash"]),
            expect=1,
            refused=Conflict(f"account {target.name} changed meanwhile; try again", field="name"),
        )
        before = {"name": target.name, "disabled": bool(row["disabled"]),
                  "token": row["token_hash"]}  # fmt: skip
        after = {"name": target.name, "disabled": disabled, "token": new_hash}
        return Effects(
            statements=(guard,),
            audit=(audit_entry(actor, action, target.name, before, after),),
            target=f"account {target.name}",
        )

    def _owner(self) -> HandleValue:
        operator = self.reg.operator
        return HandleValue(100, HS_ADMIN, encode_admin(AdminRecord(operator.handle,
                                                                   operator.index)))  # fmt: skip

    async def _membership(self, target: Account, *, member: bool) -> None:
        """Put the account's identity in, or take it out of, its organisation's admin group
        (what gives it rights over the organisation's identifiers)."""
        reg = self.reg
        if target.is_operator or target.org_id is None:
            return
        org = await reg.organisations.get(target.org_id)
        if member:
            await reg.accounts.add_to_group(org["credit_code"], target.identity)
            return
        group = reg.accounts.group_handle(org["credit_code"])
        record = await reg.store.get_handle(group) or []
        members = next((decode_vlist(v.data) for v in record if v.index == GROUP_INDEX), ())
        ref = ValueReference(target.identity.handle, target.identity.index)
        if ref not in members:
            return
        data = encode_vlist([m for m in members if m != ref])
        await reg.admin.add_values(
            reg.operator, group, [HandleValue(GROUP_INDEX, HS_VLIST, data)], overwrite=True
        )

    async def _organisation_open(self, target: Account) -> None:
        if target.org_id is None:
            return
        org = await self.reg.organisations.get(target.org_id)
        if org["state"] != "approved":
            raise RegistryError(
                f"organisation {target.org_id} is {org['state']}; its accounts stay disabled",
                field="name",
            )

    async def _row(self, target: Account) -> dict[str, Any]:
        row = await self.reg.store.query_one(
            "SELECT token_hash, disabled FROM {s}.accounts WHERE id = ?", target.id
        )
        if row is None:  # deleted between get() and here
            raise Conflict(f"account {target.name} changed meanwhile; try again", field="name")
        return row

    async def _disabled(self, target: Account) -> bool:
        return bool((await self._row(target))["disabled"])

    async def _describe(self, name: str) -> dict[str, Any]:
        row = await self.reg.store.query_one(
            "SELECT token_hash, disabled FROM {s}.accounts WHERE name = ?", name
        )
        account = await self.reg.accounts.get(name)
        assert row is not None
        return {
            **account.describe(),
            "disabled": bool(row["disabled"]),
            "has_token": not str(row["token_hash"]).startswith(DEAD_PREFIX),
        }
