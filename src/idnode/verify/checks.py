"""Is an answer the one expected? One function per answer format (wire, HTTP).

Hits must come back SUCCESS (HTTP 200, ``responseCode`` 1), misses HANDLE_NOT_FOUND (HTTP
404, ``responseCode`` 100), typed queries SUCCESS with every value of the asked-for type.
Hits and misses are judged from the response code alone, which is a fixed offset away, so
checking costs next to nothing; typed answers are decoded in full because their values are
what is being checked.
"""

from __future__ import annotations

import struct

import orjson

from idnode.errors import IdnodeError
from idnode.verify.results import CODE, MALFORMED, OK, WRONG_TYPE
from idnode.verify.workload import HANDLE_NOT_FOUND, MISS, SUCCESS, TYPED, Op
from idnode.wire.bodies import ResolutionResponse
from idnode.wire.envelope import decode_envelope
from idnode.wire.message import decode_message

_CODE_AT = struct.Struct(">I")
_HEADER_SIZE = 24


def expected_code(op: Op) -> int:
    return HANDLE_NOT_FOUND if op.kind == MISS else SUCCESS


def check_wire(op: Op, envelope: bytes, payload: bytes) -> tuple[str, str | None]:
    """(outcome, note) for a Handle-protocol answer: ``envelope`` is its 20 raw bytes,
    ``payload`` the (reassembled) message after it."""
    if len(payload) < _HEADER_SIZE:
        return MALFORMED, f"{len(payload)}-byte message is shorter than a header"
    code = _CODE_AT.unpack_from(payload, 4)[0]
    want = expected_code(op)
    if code != want:
        return CODE, f"{op.kind} {op.handle}: response code {code}, expected {want}"
    if op.kind != TYPED:
        return OK, None
    try:
        msg = decode_message(decode_envelope(envelope), payload)
    except IdnodeError as exc:
        return MALFORMED, f"{op.handle}: {exc}"
    if not isinstance(msg.body, ResolutionResponse):
        return MALFORMED, f"{op.handle}: a {type(msg.body).__name__} body"
    others = sorted({v.type for v in msg.body.values if v.type != op.type})
    if others or not msg.body.values:
        return WRONG_TYPE, f"{op.handle} type={op.type}: got {others or 'no values'}"
    return OK, None


def check_http(op: Op, status: int, body: bytes) -> tuple[str, str | None]:
    """(outcome, note) for an HTTP answer to GET /api/handles/{handle}."""
    want_status = 404 if op.kind == MISS else 200
    if status != want_status:
        return CODE, f"{op.kind} {op.handle}: HTTP {status}, expected {want_status}"
    want = expected_code(op)
    if op.kind != TYPED:
        # the code is near the front of the compact JSON; a full parse would cost more than
        # the request, so look for it and fall back to parsing when the layout differs
        if body.startswith(b'{"responseCode":%d,' % want):
            return OK, None
    try:
        doc = orjson.loads(body)
        code = doc["responseCode"]
        values = doc.get("values", [])
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        return MALFORMED, f"{op.handle}: unreadable JSON ({exc})"
    if code != want:
        return CODE, f"{op.kind} {op.handle}: responseCode {code}, expected {want}"
    if op.kind != TYPED:
        return OK, None
    try:
        others = sorted({v["type"] for v in values if v["type"] != op.type})
    except (KeyError, TypeError):
        return MALFORMED, f"{op.handle}: values without a type"
    if others or not values:
        return WRONG_TYPE, f"{op.handle} type={op.type}: got {others or 'no values'}"
    return OK, None
