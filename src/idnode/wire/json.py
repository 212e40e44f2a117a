"""Handle values as the Handle.Net REST API's JSON shows them (technical manual 14.8).

Both directions live here so what a GET shows is exactly what a PUT accepts back: pyhandle
modifies a record by copying values from a GET answer and PUTting them again. The ``data``
member of each value comes from the typed-value registry (``idnode.wire.types``), which also
applies each type's write rule, with the very message ``check_record`` gives a wire write.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from idnode.codes import Permission, TTLType
from idnode.errors import InvalidValue, ProtocolError
from idnode.model import DEFAULT_PERMISSIONS, DEFAULT_TTL, HandleValue, ValueReference
from idnode.wire.types import data_from_json, to_json, validate


@functools.lru_cache(maxsize=4096)
def iso_timestamp(seconds: int) -> str:
    # cached: the values of a record, and of the writes of one second, share their stamp,
    # and formatting one took 6 % of the GIL under creates (issue 16, py-spy --gil)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def value_to_json(v: HandleValue) -> dict[str, Any]:
    # HSJ writes an absolute expiry as an ISO 8601 string in "ttl" itself (manual 14.8)
    absolute = v.ttl_type == TTLType.ABSOLUTE
    out: dict[str, Any] = {
        "index": v.index,
        "type": v.type,
        "data": to_json(v),
        "ttl": iso_timestamp(v.ttl & 0xFFFFFFFF) if absolute else v.ttl,
        "timestamp": iso_timestamp(v.timestamp),
    }
    if v.permissions != DEFAULT_PERMISSIONS:
        out["permissions"] = permissions_to_json(v.permissions)
    if v.references:
        out["references"] = [{"index": r.index, "handle": r.handle} for r in v.references]
    return out


def permissions_to_json(perms: Permission) -> str:
    """Handle.Net's 4-character form: admin read, admin write, public read, public write."""
    return "".join(
        "1" if perms & bit else "0"
        for bit in (
            Permission.ADMIN_READ,
            Permission.ADMIN_WRITE,
            Permission.PUBLIC_READ,
            Permission.PUBLIC_WRITE,
        )
    )


def permissions_from_json(text: str) -> Permission:
    if not isinstance(text, str) or len(text) != 4 or set(text) - {"0", "1"}:
        raise InvalidValue(f"permissions must be 4 characters of 0/1, got {text!r}")
    bits = (
        Permission.ADMIN_READ,
        Permission.ADMIN_WRITE,
        Permission.PUBLIC_READ,
        Permission.PUBLIC_WRITE,
    )
    perms = Permission(0)
    for char, bit in zip(text, bits, strict=True):
        if char == "1":
            perms |= bit
    return perms


def value_from_json(obj: Any, *, timestamp: int, index: int | None = None) -> HandleValue:
    """One value from REST/JSON-lines input; ``timestamp`` is the server's time of the write.

    ``index`` fills in a value sent without one (``PUT ?index=various`` lets the server choose);
    a value that carries its own index keeps it. Client timestamps are ignored: the server
    stamps every write, as HSJ does. The type's write rule is applied here (the registry's
    ``validate``, as ``check_record`` applies it), so a bad value fails before anything else.
    """
    if not isinstance(obj, dict):
        raise InvalidValue("each value must be a JSON object")
    if "type" not in obj:
        raise InvalidValue("value is missing 'type'")
    if "index" in obj:
        index = _json_index(obj["index"])
    elif index is None:
        raise InvalidValue("value is missing 'index'")
    type_ = obj["type"]
    if not isinstance(type_, str) or not type_:
        raise InvalidValue(f"value {index}: type must be a non-empty string")
    ttl_type, ttl = _ttl_from_json(obj, index)
    perms = (
        permissions_from_json(obj["permissions"]) if "permissions" in obj else DEFAULT_PERMISSIONS
    )
    refs = _refs_from_json(obj.get("references", obj.get("refs", ())), index)
    data = data_from_json(obj.get("data", ""), f"value {index}: data")
    value = HandleValue(
        index=index,
        type=type_,
        data=data,
        permissions=perms,
        ttl_type=ttl_type,
        ttl=ttl,
        timestamp=timestamp,
        references=refs,
    )
    validate(value)
    return value


def _json_index(raw: object) -> int:
    """A value index: a positive 32-bit integer, also as a decimal string (pyhandle sends both)."""
    index = raw
    if isinstance(index, str) and index.strip().isdigit():
        index = int(index)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 < index < 2**31:
        raise InvalidValue(f"value index must be a positive 32-bit integer, got {raw!r}")
    return index


def _ttl_from_json(obj: dict, index: int) -> tuple[TTLType, int]:
    """(ttl type, ttl): seconds, or an ISO 8601 expiry as HSJ writes absolute ttls.

    ``"ttlType": 1`` with seconds since the epoch is accepted too (idnode's earlier form).
    """
    ttl = obj.get("ttl", DEFAULT_TTL)
    if isinstance(ttl, str):
        try:
            when = datetime.fromisoformat(ttl.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidValue(f"value {index}: ttl must be seconds or an ISO 8601 time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = int(when.timestamp())
        if not 0 <= seconds < 2**32:
            raise InvalidValue(f"value {index}: ttl time out of range")
        return TTLType.ABSOLUTE, seconds if seconds < 2**31 else seconds - 2**32
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not -(2**31) <= ttl < 2**31:
        raise InvalidValue(f"value {index}: ttl must be a 32-bit integer")
    absolute = obj.get("ttlType") in (1, "1", "absolute")
    return (TTLType.ABSOLUTE if absolute else TTLType.RELATIVE), ttl


def _refs_from_json(raw: object, index: int) -> tuple[ValueReference, ...]:
    if not isinstance(raw, list | tuple):
        raise InvalidValue(f"value {index}: references must be a list")
    refs = []
    for r in raw:
        if not isinstance(r, dict) or not isinstance(r.get("handle"), str):
            raise InvalidValue(f"value {index}: each reference needs a handle and an index")
        ref_index = r.get("index")
        if isinstance(ref_index, str) and ref_index.strip().lstrip("-").isdigit():
            ref_index = int(ref_index)
        if not isinstance(ref_index, int) or isinstance(ref_index, bool):
            raise InvalidValue(f"value {index}: reference index must be an integer")
        refs.append(ValueReference(r["handle"], ref_index))
    return tuple(refs)


def put_entity_values(entity: Any, handle_matches: Callable[[str], bool]) -> list[Any]:
    """The raw value objects of a PUT entity, in the three shapes HSJ accepts (manual 14.5.2).

    An array of values, an object whose ``values`` is that array (its ``handle``, when given,
    must name the handle being written; other members are ignored), or one bare value.
    Anything else is a protocol error, as in HSJ's ``getCreateOrAddRequest``.
    """
    if isinstance(entity, list):
        return entity
    if isinstance(entity, dict):
        if "values" in entity:
            named = entity.get("handle")
            if named is not None and not (isinstance(named, str) and handle_matches(named)):
                raise ProtocolError("mismatched handle in PUT request")
            values = entity["values"]
            if values is None:
                return []
            if not isinstance(values, list):
                raise ProtocolError("'values' must be an array of handle values")
            return values
        if {"index", "type", "data"} <= entity.keys():
            return [entity]
    raise ProtocolError(
        "invalid JSON in PUT request: expected an array of values or an object with 'values'"
    )


__all__ = [
    "iso_timestamp",
    "permissions_from_json",
    "permissions_to_json",
    "put_entity_values",
    "value_from_json",
    "value_to_json",
]
