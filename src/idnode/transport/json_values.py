"""Handle records as the Handle.Net REST API's JSON shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from idnode.codes import Permission, TTLType
from idnode.errors import InvalidValue
from idnode.model import DEFAULT_PERMISSIONS, DEFAULT_TTL, HandleValue, ValueReference
from idnode.wire.handlevalues import describe_value, value_data_from_json


def iso_timestamp(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def value_to_json(v: HandleValue) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": v.index,
        "type": v.type,
        "data": describe_value(v),
        "ttl": v.ttl,
        "timestamp": iso_timestamp(v.timestamp),
    }
    if v.ttl_type == TTLType.ABSOLUTE:
        out["ttlType"] = 1
    if v.permissions != DEFAULT_PERMISSIONS:
        out["permissions"] = permissions_to_json(v.permissions)
    if v.references:
        out["refs"] = [{"index": r.index, "handle": r.handle} for r in v.references]
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


def value_from_json(obj: Any, *, timestamp: int) -> HandleValue:
    """One value from REST/JSON-lines input; ``timestamp`` is the server's time of the write."""
    if not isinstance(obj, dict):
        raise InvalidValue("each value must be a JSON object")
    try:
        index = obj["index"]
        type_ = obj["type"]
    except KeyError as exc:
        raise InvalidValue(f"value is missing {exc.args[0]!r}") from None
    if isinstance(index, str) and index.lstrip("-").isdigit():
        index = int(index)
    if not isinstance(index, int) or isinstance(index, bool) or not 0 < index < 2**31:
        raise InvalidValue(f"value index must be a positive integer, got {index!r}")
    if not isinstance(type_, str):
        raise InvalidValue(f"value {index}: type must be a string")
    ttl = obj.get("ttl", DEFAULT_TTL)
    if not isinstance(ttl, int) or isinstance(ttl, bool):
        raise InvalidValue(f"value {index}: ttl must be an integer")
    ttl_type = TTLType.ABSOLUTE if obj.get("ttlType") in (1, "1", "absolute") else TTLType.RELATIVE
    perms = (
        permissions_from_json(obj["permissions"]) if "permissions" in obj else DEFAULT_PERMISSIONS
    )
    refs = tuple(ValueReference(str(r["handle"]), int(r["index"])) for r in obj.get("refs", ()))
    data = value_data_from_json(type_, obj.get("data", ""))
    return HandleValue(
        index=index,
        type=type_,
        data=data,
        permissions=perms,
        ttl_type=ttl_type,
        ttl=ttl,
        timestamp=timestamp,
        references=refs,
    )
