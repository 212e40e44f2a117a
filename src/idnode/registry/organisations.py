"""Organisations and real-name review.

An enterprise applies with its legal name, unified social credit code (check digit verified,
``creditcode.py``), contact and the metadata of its documents (name, type, SHA-256, size: the
files themselves stay in the operator's document system). The node operator approves or
rejects with a reason; approval creates the organisation's admin group and its first account.
Every state change is a row of ``state_changes`` and an audit entry.

States: ``pending`` -> ``approved`` | ``rejected``; a rejected organisation may apply again.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from idnode.registry.changes import audit_entry, state_change
from idnode.registry.creditcode import validate_credit_code
from idnode.registry.errors import Conflict, NotFound, RegistryError
from idnode.store.effects import Effects

if TYPE_CHECKING:
    from idnode.registry.accounts import Account
    from idnode.registry.service import Registry

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{5,19}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_application(
    legal_name: Any, credit_code: Any, contact: Any, documents: Any
) -> tuple[str, str, dict[str, str], list[dict[str, Any]]]:
    """The application, normalised, or a RegistryError naming the first bad field."""
    if not isinstance(legal_name, str) or not 2 <= len(legal_name.strip()) <= 200:
        raise RegistryError("2 to 200 characters", field="legal_name")
    code = validate_credit_code(credit_code)
    if not isinstance(contact, dict):
        raise RegistryError("must be an object with name, phone, email", field="contact")
    for key in ("name", "phone", "email"):
        if not isinstance(contact.get(key), str) or not contact[key].strip():
            raise RegistryError("is required", field=f"contact.{key}")
    if not _EMAIL.match(contact["email"]):
        raise RegistryError("not an e-mail address", field="contact.email")
    if not _PHONE.match(contact["phone"]):
        raise RegistryError("not a phone number", field="contact.phone")
    if not isinstance(documents, list):
        raise RegistryError("must be a list", field="documents")
    docs = []
    for i, doc in enumerate(documents):
        where = f"documents[{i}]"
        if not isinstance(doc, dict):
            raise RegistryError("must be an object", field=where)
        if not isinstance(doc.get("name"), str) or not doc["name"].strip():
            raise RegistryError("is required", field=f"{where}.name")
        if not isinstance(doc.get("sha256"), str) or not _SHA256.match(doc["sha256"]):
            raise RegistryError("64 lowercase hex digits", field=f"{where}.sha256")
        docs.append(
            {
                "name": doc["name"].strip(),
                "type": str(doc.get("type", "")),
                "sha256": doc["sha256"],
                "size": _size(doc.get("size", 0), f"{where}.size"),
            }
        )
    clean_contact = {k: contact[k].strip() for k in ("name", "phone", "email")}
    return legal_name.strip(), code, clean_contact, docs


def _size(value: Any, field: str) -> int:
    """A document's size in bytes: a whole number JSON can carry exactly."""
    if value is None or value == "":
        return 0
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise RegistryError("must be a number of bytes", field=field) from None
    if isinstance(value, bool) or not 0 <= size <= 2**53:
        raise RegistryError("must be a number of bytes from 0 to 2^53", field=field)
    return size


ORG_COLUMNS = "SELECT * FROM {s}.organisations WHERE id = ?"


class Organisations:
    def __init__(self, reg: Registry) -> None:
        self.reg = reg

    async def apply(
        self, actor: str, legal_name: Any, credit_code: Any, contact: Any, documents: Any = ()
    ) -> dict[str, Any]:
        name, code, contact, docs = check_application(
            legal_name, credit_code, contact, list(documents)
        )
        reg, now = self.reg, self.reg.now()
        contact_json, docs_json = orjson.dumps(contact).decode(), orjson.dumps(docs).decode()
        async with reg.store.atomic("registry", f"organisation {code}") as tx:
            old = await tx.fetchrow(
                "SELECT id, state FROM {s}.organisations WHERE credit_code = ?", code
            )
            if old is not None and old["state"] != REJECTED:
                raise Conflict(
                    f"an organisation with this code exists (id {old['id']}, {old['state']})",
                    field="credit_code",
                )
            if old is None:
                org_id = await tx.fetchval(
                    "INSERT INTO {s}.organisations (legal_name, credit_code, contact, documents,"
                    " state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    name, code, contact_json, docs_json, PENDING, now, now,
                )  # fmt: skip
            else:
                org_id = old["id"]
                await tx.execute(
                    "UPDATE {s}.organisations SET legal_name = ?, contact = ?, documents = ?,"
                    " state = ?, reason = '', updated_at = ? WHERE id = ?",
                    name, contact_json, docs_json, PENDING, now, org_id,
                )  # fmt: skip
            org = _org(await tx.fetchrow(ORG_COLUMNS, org_id))
            old_state = old["state"] if old else None
            await tx.apply(
                Effects(
                    statements=(
                        state_change("organisation", str(org_id), actor, old_state, PENDING,
                                     "application", now),
                    ),
                    audit=(audit_entry(actor, "organisation.apply", str(org_id), None, org),),
                )
            )  # fmt: skip
        return org

    async def approve(self, actor: str, org_id: int) -> dict[str, Any]:
        """Approve; creates the admin group and returns the organisation (caller makes the
        first account)."""
        org = await self.get(org_id)
        if org["state"] != PENDING:
            raise RegistryError(f"organisation is {org['state']}, not pending", field="org_id")
        await self.reg.accounts.ensure_group(org["credit_code"])
        return await self._change(actor, org_id, APPROVED, "")

    async def reject(self, actor: str, org_id: int, reason: str) -> dict[str, Any]:
        if not isinstance(reason, str) or not reason.strip():
            raise RegistryError("a rejection needs a reason", field="reason")
        return await self._change(actor, org_id, REJECTED, reason.strip())

    async def _change(self, actor: str, org_id: int, state: str, reason: str) -> dict[str, Any]:
        reg, now = self.reg, self.reg.now()
        async with reg.store.atomic("registry", f"organisation {org_id}") as tx:
            row = await tx.fetchrow(ORG_COLUMNS, _check_id(org_id))
            if row is None:
                raise NotFound(f"no organisation {org_id}", field="org_id")
            before = _org(row)
            if before["state"] != PENDING:
                raise RegistryError(
                    f"organisation is {before['state']}, not pending", field="org_id"
                )
            await tx.execute(
                "UPDATE {s}.organisations SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                state, reason, now, org_id,
            )  # fmt: skip
            after = _org(await tx.fetchrow(ORG_COLUMNS, org_id))
            await tx.apply(
                Effects(
                    statements=(
                        state_change("organisation", str(org_id), actor, before["state"], state,
                                     reason, now),
                    ),
                    audit=(audit_entry(actor, f"organisation.{state}", str(org_id), before,
                                       after),),
                )
            )  # fmt: skip
        return after

    async def get(self, org_id: Any, field: str = "org_id") -> dict[str, Any]:
        row = await self.reg.store.query_one(ORG_COLUMNS, _check_id(org_id, field))
        if row is None:
            raise NotFound(f"no organisation {org_id}", field=field)
        return _org(row)

    async def list(self, state: str | None = None) -> list[dict[str, Any]]:
        if state:
            rows = await self.reg.store.query(
                "SELECT * FROM {s}.organisations WHERE state = ? ORDER BY id", state
            )
        else:
            rows = await self.reg.store.query("SELECT * FROM {s}.organisations ORDER BY id")
        return [_org(r) for r in rows]

    async def history(self, org_id: int) -> list[dict[str, Any]]:
        return await self.reg.state_history("organisation", str(org_id))


async def approve_with_admin(
    reg: Registry, who: Account, org_id: int, admin_name: str | None = None
) -> dict[str, Any]:
    """Approve an application and create the organisation's first admin account (its token
    shown once): what an operator's approval means, from the management API or the console."""
    from idnode.registry.accounts import ORG_ADMIN

    org = await reg.organisations.approve(reg.actor(who), org_id)
    name = admin_name or f"org{org_id}-admin"
    account, token, extra = await reg.accounts.create(
        reg.actor(who), name, ORG_ADMIN, org_id, by=who
    )
    return {**org, "admin": {**account.describe(), "token": token, **extra}}


def _check_id(org_id: Any, field: str = "org_id") -> int:
    if not isinstance(org_id, int) or isinstance(org_id, bool) or not 0 < org_id < 2**63:
        raise RegistryError("must be an organisation id", field=field)
    return org_id


def _org(row: Any) -> dict[str, Any]:
    d = dict(row)
    d["contact"] = orjson.loads(d["contact"])
    d["documents"] = orjson.loads(d["documents"])
    return d
