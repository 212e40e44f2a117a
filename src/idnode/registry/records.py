"""Register an identifier from template fields, and update them, for the management API and
the console alike (one function each, so both write the same record the same way).

Registration gives the record its template values at the template's indexes and the
organisation's admin group as HS_ADMIN, then calls the write service as the caller's own
identity: the template's JSON Schema is checked there (``policy.py``), on every path.

The change is one write through the write service as the caller's own identity (so the
record's HS_ADMIN rights decide, as on every path), which keeps the history and writes the
audit entry in its transaction (``policy.py``) and checks the whole new record against the
prefix's template (``states.check_write``): a field that does not fit refuses the write, and
nothing is half-changed. A field set to ``""`` is removed (refused if the template requires
it); a field not named keeps its value and permissions.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from idnode.model import HandleValue
from idnode.names import prefix_part
from idnode.registry.errors import NotFound, RegistryError
from idnode.registry.prefixes import RECORD_RIGHTS

if TYPE_CHECKING:
    from idnode.registry.accounts import Account
    from idnode.registry.service import Registry


async def register_fields(reg: Registry, who: Account, handle: str, fields: dict[str, str]) -> str:
    """Create ``handle`` from ``fields`` (empty ones left out); its name as created. The
    caller has checked that ``who`` may act for the handle's prefix."""
    row = await reg.prefixes.get(prefix_part(handle))
    tmpl = reg.catalog.get(row["template"])
    unknown = [k for k in fields if k not in tmpl.fields]
    if unknown:
        raise RegistryError(f"not a field of template {tmpl.ref}", field=unknown[0])
    org = await reg.organisations.get(row["org_id"])
    admin = reg.admin_value(reg.accounts.group_handle(org["credit_code"]), RECORD_RIGHTS)
    values = [
        HandleValue(tmpl.index_of(k), k, v.encode("utf-8")) for k, v in fields.items() if v != ""
    ]
    values.append(HandleValue(100, "HS_ADMIN", admin))
    return await reg.admin.create_handle(who.identity, handle, values)


async def update_fields(
    reg: Registry, who: Account, handle: str, fields: dict[str, str]
) -> dict[str, Any]:
    if not isinstance(fields, dict) or not fields:
        raise RegistryError("name at least one field", field="fields")
    tmpl = reg.states.template_of(prefix_part(handle)) if "/" in handle else None
    if tmpl is None:
        raise RegistryError("not under an allocated prefix of this node", field="handle")
    for name, value in fields.items():
        if name not in tmpl.fields:
            raise RegistryError(f"not a field of template {tmpl.ref}", field=name)
        if not isinstance(value, str):
            raise RegistryError("must be text", field=name)
    record = await reg.store.get_handle(handle)
    if record is None:
        raise NotFound(f"handle {handle} not found", field="handle")
    by_type = {v.type: v for v in record}
    merged = [v for v in record if fields.get(v.type) != ""]
    for name, value in fields.items():
        if value == "":
            continue
        old = by_type.get(name)
        if old is not None:
            merged = [replace(v, data=value.encode()) if v is old else v for v in merged]
        else:
            index = tmpl.index_of(name)
            if any(v.index == index for v in merged):
                raise RegistryError(f"index {index} of the record holds another value",
                                    field=name)  # fmt: skip
            merged.append(HandleValue(index, name, value.encode("utf-8")))
    await reg.admin.create_handle(who.identity, handle, merged, overwrite=True)
    current = await reg.store.get_handle(handle) or []
    return {
        "handle": handle,
        "fields": {v.type: v.data.decode("utf-8", "replace") for v in current
                   if v.type in tmpl.fields},
    }  # fmt: skip
