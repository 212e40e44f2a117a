"""Handle values as rows of the SQL engines (SQLite and PostgreSQL store them alike).

A value row is ``(idx, type, data, permissions, ttl_type, ttl, timestamp, refs)``, ``refs``
being JSON ``[[handle, index], ...]`` or NULL. One module, so the two engines cannot drift
apart in how they read or write a record.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import orjson

from idnode.model import HandleValue, Permission, TTLType, ValueReference

_PERMS = {i: Permission(i) for i in range(16)}
_TTL_TYPES = {int(t): t for t in TTLType}


def encode_refs(refs: tuple[ValueReference, ...]) -> str | None:
    if not refs:
        return None
    return orjson.dumps([[r.handle, r.index] for r in refs]).decode()


def decode_refs(text: str) -> tuple[ValueReference, ...]:
    return tuple(ValueReference(h, i) for h, i in orjson.loads(text))


def record_from_rows(rows: Sequence[Sequence[Any]]) -> list[HandleValue] | None:
    """The record read by ``handles LEFT JOIN values``: None when no row (no such handle),
    [] when the one row has no value (a handle without values)."""
    if not rows:
        return None
    if rows[0][0] is None:
        return []
    return [
        HandleValue(
            r[0], r[1], r[2], _PERMS[r[3]], _TTL_TYPES[r[4]], r[5], r[6],
            decode_refs(r[7]) if r[7] is not None else (),
        )
        for r in rows
    ]  # fmt: skip


def encode_record(values: Sequence[HandleValue]) -> bytes:
    """A whole record as one blob (the history keeps versions so): the value rows as JSON,
    data in base64. Sealed data stays sealed: this sees what the store would write."""
    return orjson.dumps(
        [
            [v.index, v.type, base64.b64encode(bytes(v.data)).decode(), int(v.permissions),
             int(v.ttl_type), v.ttl, v.timestamp, [[r.handle, r.index] for r in v.references]]
            for v in values
        ]
    )  # fmt: skip


def decode_record(blob: bytes) -> list[HandleValue]:
    return [
        HandleValue(
            i, t, base64.b64decode(d), _PERMS[p], _TTL_TYPES[tt], ttl, ts,
            tuple(ValueReference(h, x) for h, x in refs),
        )
        for i, t, d, p, tt, ttl, ts, refs in orjson.loads(blob)
    ]  # fmt: skip
