"""What a value must look like before any write path stores it.

The same checks hold for the wire, REST and bulk loads: indexes are positive, sizes stay
within limits, and typed values pass their type's rule -- the one rule in the typed-value
registry (``idnode.wire.types.validate``), which the REST JSON reader applies too, so a value
is refused with the same code and message however it arrives. Messages name the index and
the rule, never the data.
"""

from __future__ import annotations

from collections.abc import Iterable

from idnode.errors import InvalidValue
from idnode.model import HandleValue
from idnode.wire.types import validate as check_typed_data

MAX_VALUE_DATA = 64 * 1024  # bytes in one value's data
MAX_VALUES = 1000  # values in one record
MAX_TYPE_LENGTH = 255  # bytes in a type name


def check_value(v: HandleValue) -> None:
    if v.index <= 0:
        raise InvalidValue(f"value index {v.index}: indexes start at 1")
    if not v.type or len(v.type.encode("utf-8")) > MAX_TYPE_LENGTH:
        raise InvalidValue(f"value {v.index}: type must be 1 to {MAX_TYPE_LENGTH} bytes")
    if len(v.data) > MAX_VALUE_DATA:
        raise InvalidValue(f"value {v.index}: data is larger than {MAX_VALUE_DATA} bytes")
    check_typed_data(v)


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
