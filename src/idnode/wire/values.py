"""Handle values on the wire (RFC 3651 section 3.1, RFC 3652 section 2.2.2 value encoding).

Layout of one value::

    Index       4 bytes
    Timestamp   4 bytes (seconds since the epoch)
    TTLType     1 byte  (0 relative, 1 absolute)
    TTL         4 bytes
    Permission  1 byte  (ADMIN_READ 0x08, ADMIN_WRITE 0x04, PUBLIC_READ 0x02, PUBLIC_WRITE 0x01)
    Type        UTF8-String (4-byte length + bytes)
    Data        4-byte length + bytes
    References  4-byte count, then per reference: UTF8-String handle + 4-byte index
"""

from __future__ import annotations

from collections.abc import Iterable

from idnode.codes import Permission, TTLType
from idnode.encoding import Reader, Writer
from idnode.errors import MalformedMessage
from idnode.model import HandleValue, ValueReference

# index + timestamp + ttl type + ttl + permission + type length + data length + ref count
MIN_VALUE_SIZE = 4 + 4 + 1 + 4 + 1 + 4 + 4 + 4
MIN_REFERENCE_SIZE = 4 + 4


def read_reference(r: Reader) -> ValueReference:
    handle = r.utf8("reference.handle")
    return ValueReference(handle, r.i32("reference.index"))


def write_reference(w: Writer, ref: ValueReference) -> None:
    w.utf8(ref.handle).u32(ref.index)


def read_value(r: Reader) -> HandleValue:
    index = r.i32("value.index")
    timestamp = r.u32("value.timestamp")
    ttl_type_raw = r.u8("value.ttl_type")
    if ttl_type_raw not in (0, 1):
        raise MalformedMessage(f"unknown TTL type {ttl_type_raw}", field="value.ttl_type")
    ttl = r.i32("value.ttl")
    perms = r.u8("value.permissions")
    if perms & 0xF0:
        raise MalformedMessage(f"unknown permission bits {perms:#04x}", field="value.permissions")
    type_ = r.utf8("value.type")
    data = r.bytes32("value.data")
    refs = tuple(r.sequence("value.references", MIN_REFERENCE_SIZE, read_reference))
    return HandleValue(
        index=index,
        type=type_,
        data=data,
        permissions=Permission(perms),
        ttl_type=TTLType(ttl_type_raw),
        ttl=ttl,
        timestamp=timestamp,
        references=refs,
    )


def write_value(w: Writer, v: HandleValue) -> None:
    w.u32(v.index).u32(v.timestamp).u8(int(v.ttl_type)).u32(v.ttl).u8(int(v.permissions))
    w.utf8(v.type).bytes32(v.data).u32(len(v.references))
    for ref in v.references:
        write_reference(w, ref)


def read_values(r: Reader, field: str = "values") -> list[HandleValue]:
    """A 4-byte count followed by that many values."""
    return r.sequence(field, MIN_VALUE_SIZE, read_value)


def write_values(w: Writer, values: Iterable[HandleValue]) -> None:
    values = list(values)
    w.u32(len(values))
    for v in values:
        write_value(w, v)


def encode_value(v: HandleValue) -> bytes:
    w = Writer()
    write_value(w, v)
    return w.getvalue()


def decode_value(data: bytes) -> HandleValue:
    r = Reader(data)
    v = read_value(r)
    r.expect_end("value")
    return v
