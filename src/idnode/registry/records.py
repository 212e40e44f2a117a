"""Update an identifier's template fields through the management API.

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

if TYPE_CHECKING:
    from idnode.registry.accounts import Account
    from idnode.registry.service import Registry


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
