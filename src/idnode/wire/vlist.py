"""HS_VLIST value data (RFC 3651 section 3.2.7): a list of value references.

An HS_VLIST names a group of administrators: each entry points at a value (usually an
HS_PUBKEY, HS_SECKEY or another HS_VLIST) somewhere else. Wire layout::

    Count        4 bytes
    References   Count times: UTF8-String handle + 4-byte index

It is the same reference layout as a handle value's reference list, so the codec reuses
``idnode.wire.values``; the REST form is ``[{"handle": ..., "index": ...}, ...]``.
"""

from __future__ import annotations

from collections.abc import Iterable

from idnode.encoding import Reader, Writer
from idnode.errors import InvalidValue
from idnode.model import ValueReference
from idnode.wire.admin import check_index, json_int
from idnode.wire.values import MIN_REFERENCE_SIZE, read_reference, write_reference


def encode_vlist(refs: Iterable[ValueReference]) -> bytes:
    refs = list(refs)
    w = Writer().u32(len(refs))
    for ref in refs:
        check_index(ref.index, "vlist.index")
        write_reference(w, ref)
    return w.getvalue()


def decode_vlist(data: bytes) -> tuple[ValueReference, ...]:
    r = Reader(data)
    refs = tuple(r.sequence("vlist", MIN_REFERENCE_SIZE, read_reference))
    r.expect_end("vlist")
    return refs


def vlist_to_json(refs: Iterable[ValueReference]) -> list[dict]:
    return [{"handle": ref.handle, "index": ref.index} for ref in refs]


def vlist_from_json(obj: object, field: str = "data.value") -> tuple[ValueReference, ...]:
    if not isinstance(obj, list):
        raise InvalidValue(f"{field}: vlist value must be an array")
    refs = []
    for i, item in enumerate(obj):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise InvalidValue(f"{where}: must be an object with handle and index")
        handle = item.get("handle")
        if not isinstance(handle, str) or not handle:
            raise InvalidValue(f"{where}.handle: must be a non-empty string")
        refs.append(ValueReference(handle, json_int(item.get("index"), f"{where}.index")))
    return tuple(refs)
