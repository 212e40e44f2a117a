"""What a value must look like before any write path stores it.

The same checks hold for the wire, REST and bulk loads: typed values must decode, sizes stay
within limits, indexes are positive. Messages name the index and the rule, never the data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from idnode.crypto.keys import decode_public_key
from idnode.errors import IdnodeError, InvalidValue
from idnode.model import HS_ADMIN, HS_PUBKEY, HS_SITE, HS_VLIST, HandleValue
from idnode.wire.admin import decode_admin
from idnode.wire.site import decode_site
from idnode.wire.vlist import decode_vlist

MAX_VALUE_DATA = 64 * 1024  # bytes in one value's data
MAX_VALUES = 1000  # values in one record
MAX_TYPE_LENGTH = 255  # bytes in a type name

_TYPED_DECODERS: dict[str, Callable[[bytes], object]] = {
    HS_ADMIN: decode_admin,
    HS_VLIST: decode_vlist,
    HS_SITE: decode_site,
    HS_PUBKEY: decode_public_key,
}


def check_value(v: HandleValue) -> None:
    if v.index <= 0:
        raise InvalidValue(f"value index {v.index}: indexes start at 1")
    if not v.type or len(v.type.encode("utf-8")) > MAX_TYPE_LENGTH:
        raise InvalidValue(f"value {v.index}: type must be 1 to {MAX_TYPE_LENGTH} bytes")
    if len(v.data) > MAX_VALUE_DATA:
        raise InvalidValue(f"value {v.index}: data is larger than {MAX_VALUE_DATA} bytes")
    decoder = _TYPED_DECODERS.get(v.type)
    if decoder is not None:
        try:
            decoder(v.data)
        except IdnodeError as exc:
            raise InvalidValue(f"value {v.index}: not a valid {v.type}: {exc}") from None


def check_record(values: Iterable[HandleValue]) -> list[HandleValue]:
    out = list(values)
    if len(out) > MAX_VALUES:
        raise InvalidValue(f"a record holds at most {MAX_VALUES} values")
    seen: set[int] = set()
    for v in out:
        check_value(v)
        if v.index in seen:
            raise InvalidValue(f"value index {v.index} appears twice")
        seen.add(v.index)
    return out
