"""HS_ADMIN value data (RFC 3651 section 3.2.1) and its Handle.Net REST/JSON form.

Wire layout::

    AdminPermission   2 bytes  (bit 0x0001 ADD_HANDLE ... bit 0x0800 LIST_HANDLES)
    AdminRef.handle   UTF8-String (4-byte length + bytes)
    AdminRef.index    4 bytes

Old Handle.Net software wrote the permission field into a 4-byte slot, leaving two zero bytes
at the end of the record. HSJ still reads such records ("legacyByteLength") and so do we:
``legacy_length`` remembers it so the record re-encodes byte for byte.

The REST API shows the permissions as a 12-character bit string, most significant bit
(LIST_HANDLES) first, e.g. ``"011111110011"`` -- the order of HSJ's ``AdminRecord`` JSON
adapter, where character ``11 - i`` is permission bit ``i``.
"""

from __future__ import annotations

from dataclasses import dataclass

from idnode.codes import AdminPermission
from idnode.encoding import Reader, Writer
from idnode.errors import InvalidValue

PERMISSION_BITS = 12
PERMISSION_MASK = (1 << PERMISSION_BITS) - 1  # 0x0FFF: the bits RFC 3651 defines
ALL_PERMISSIONS = AdminPermission(PERMISSION_MASK)

MIN_ADMIN_SIZE = 2 + 4 + 4


@dataclass(frozen=True, slots=True)
class AdminRecord:
    """Who administers a handle: a reference ``index:handle`` plus what it may do."""

    handle: str
    index: int
    permissions: AdminPermission = ALL_PERMISSIONS
    legacy_length: bool = False  # two trailing pad bytes, as very old servers wrote


def encode_admin(rec: AdminRecord) -> bytes:
    perms = int(rec.permissions)
    if perms & ~0xFFFF:
        raise InvalidValue(f"admin permissions {perms:#x} do not fit in 2 bytes")
    check_index(rec.index, "admin.index")
    w = Writer().u16(perms).utf8(rec.handle).u32(rec.index)
    if rec.legacy_length:
        w.u16(0)
    return w.getvalue()


def decode_admin(data: bytes) -> AdminRecord:
    """Decode HS_ADMIN data; bits above LIST_HANDLES are dropped, as HSJ does."""
    r = Reader(data)
    perms = r.u16("admin.permissions")
    handle = r.utf8("admin.handle")
    index = r.i32("admin.index")
    legacy = r.remaining == 2
    if legacy:
        r.raw(2, "admin.padding")
    r.expect_end("admin")
    return AdminRecord(handle, index, AdminPermission(perms & PERMISSION_MASK), legacy)


def permissions_to_string(perms: AdminPermission | int) -> str:
    """``AdminPermission`` -> 12-char bit string, LIST_HANDLES first (REST API form)."""
    return format(int(perms) & PERMISSION_MASK, f"0{PERMISSION_BITS}b")


def permissions_from_string(text: str) -> AdminPermission:
    """Strict inverse of ``permissions_to_string``: exactly 12 characters of ``0``/``1``."""
    if not isinstance(text, str) or len(text) != PERMISSION_BITS or set(text) - {"0", "1"}:
        raise InvalidValue(
            f"admin permissions must be {PERMISSION_BITS} characters of 0/1, got {text!r}"
        )
    return AdminPermission(int(text, 2))


def admin_to_json(rec: AdminRecord) -> dict:
    """The ``value`` of the REST ``{"format": "admin"}`` object."""
    out: dict = {
        "handle": rec.handle,
        "index": rec.index,
        "permissions": permissions_to_string(rec.permissions),
    }
    if rec.legacy_length:
        out["legacyByteLength"] = True
    return out


def admin_from_json(obj: object, field: str = "data.value") -> AdminRecord:
    """Parse the REST admin object; ``index`` may arrive as a decimal string (pyhandle)."""
    if not isinstance(obj, dict):
        raise InvalidValue(f"{field}: admin value must be an object")
    handle = obj.get("handle")
    if not isinstance(handle, str) or not handle:
        raise InvalidValue(f"{field}.handle: must be a non-empty string")
    index = json_int(obj.get("index"), f"{field}.index")
    perms_raw = obj.get("permissions")
    try:
        perms = permissions_from_string(perms_raw)  # type: ignore[arg-type]
    except InvalidValue as exc:
        raise InvalidValue(f"{field}.permissions: {exc.message}") from None
    legacy = obj.get("legacyByteLength", False)
    if not isinstance(legacy, bool):
        raise InvalidValue(f"{field}.legacyByteLength: must be a boolean")
    return AdminRecord(handle, index, perms, legacy)


def check_index(index: int, field: str) -> None:
    """Indexes travel as signed 4-byte integers; refuse what would silently wrap."""
    if not -(1 << 31) <= index < (1 << 31):
        raise InvalidValue(f"{field}: {index} does not fit in 4 signed bytes")


def json_int(raw: object, field: str, lo: int = -(1 << 31), hi: int = (1 << 31) - 1) -> int:
    """An integer from JSON that may also be sent as a decimal string, range-checked."""
    if isinstance(raw, bool):
        raise InvalidValue(f"{field}: must be an integer")
    if isinstance(raw, str):
        text = raw.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not (digits.isascii() and digits.isdigit()):
            raise InvalidValue(f"{field}: {raw!r} is not an integer")
        raw = int(text)
    if not isinstance(raw, int):
        raise InvalidValue(f"{field}: must be an integer")
    if not lo <= raw <= hi:
        raise InvalidValue(f"{field}: {raw} out of range {lo}..{hi}")
    return raw


__all__ = [
    "ALL_PERMISSIONS",
    "AdminRecord",
    "admin_from_json",
    "admin_to_json",
    "check_index",
    "decode_admin",
    "encode_admin",
    "json_int",
    "permissions_from_string",
    "permissions_to_string",
]
