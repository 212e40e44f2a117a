"""Pre-encoded public answers: encoded once when a record is written, served many times.

An uncached resolution used to decode the request into objects, read the record's rows into
``HandleValue`` objects, filter them, build a response message and encode it: about 120 µs
of Python per request (docs/performance.md). Most resolutions on a node that sees long tails
(every product of a line scanned once) are anonymous, unfiltered and ask for public values,
whose answer only changes when the record does. So the store keeps, beside each record and
in the same transaction as every write to it, its public values encoded for the wire and for
REST (``model.PublicAnswer``, built by ``encode_public_answer``); a request that qualifies
(``plain_resolution``) is answered with one keyed read and an envelope
(``resolution_answer``, ``rest_body``). Everything else takes the full path.

Sans-I/O like the rest of ``wire``: bytes and values in, bytes out.
"""

from __future__ import annotations

import functools
import itertools
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import orjson

from idnode.codes import OpCode, OpFlag, Permission, ResponseCode
from idnode.encoding import Writer
from idnode.errors import ProtocolError
from idnode.model import HandleValue, PublicAnswer
from idnode.wire import peek
from idnode.wire.envelope import (
    ENVELOPE_SIZE,
    FLAG_COMPRESSED,
    FLAG_ENCRYPTED,
    FLAG_TRUNCATED,
    OUR_VERSION,
    Envelope,
    reply_version,
)
from idnode.wire.header import HEADER_SIZE, MAX_RECURSION_COUNT
from idnode.wire.json import value_to_json
from idnode.wire.message import ECHOED_FLAGS
from idnode.wire.types import data_to_json, lookup
from idnode.wire.values import write_value, write_values

_PUBLIC_READ = int(Permission.PUBLIC_READ)
_ADMIN_READ = int(Permission.ADMIN_READ)
_ECHOED = int(ECHOED_FLAGS)
# signed, encrypted, recursive or authoritative answers, and answers carrying the request's
# digest, depend on more than the record: the full path makes them
_NOT_PLAIN_FLAGS = int(OpFlag.CT | OpFlag.ENC | OpFlag.REC | OpFlag.AT | OpFlag.RD)
_PO = int(OpFlag.PO)
_NOT_PLAIN_ENVELOPE = FLAG_COMPRESSED | FLAG_ENCRYPTED | FLAG_TRUNCATED
_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">IIIHBBII")
_ENVELOPE = struct.Struct(">BBBBIIII")
_SUCCESS = int(ResponseCode.SUCCESS)
_RESOLUTION = int(OpCode.RESOLUTION)
_NO_CREDENTIAL = bytes(4)
# header + handle length + empty index list + empty type list: the smallest plain request
_MIN_PLAIN = ENVELOPE_SIZE + HEADER_SIZE + 12
_MARK = "\x00idnode-data\x00"  # where a layout's JSON takes each row's data


# -- at write time ----------------------------------------------------------------------------
def encode_public_answer(values: Sequence[HandleValue]) -> PublicAnswer | None:
    """The public answer of a record, or None when an anonymous resolution of it is not a
    plain list of values (it has values, none of them public: the full path answers
    VALUES_NOT_FOUND). The values go in index order, as the store returns them."""
    ordered = sorted(values, key=_index)
    public = [v for v in ordered if int(v.permissions) & _PUBLIC_READ]
    if ordered and not public:
        return None
    w = Writer()
    write_values(w, public)
    return PublicAnswer(
        w.getvalue(),
        orjson.dumps([value_to_json(v) for v in public]),
        any(_restricted(v) for v in ordered),
    )


def layout_encoder(
    layout: Sequence[HandleValue],
) -> Callable[[Sequence[bytes]], PublicAnswer | None]:
    """``encode_public_answer`` for the records of a bulk load's row group: everything but
    each public slot's data is encoded once per layout (``store.base.RowGroup``)."""
    slots = sorted(range(len(layout)), key=lambda n: layout[n].index)
    public = [n for n in slots if int(layout[n].permissions) & _PUBLIC_READ]
    if layout and not public:
        return lambda datas: None
    restricted = any(_restricted(v) for v in layout)
    pieces = []  # (slot, the bytes before its data length, the bytes after its data)
    for n in public:
        w = Writer()
        write_value(w, replace(layout[n], data=b""))
        encoded = w.getvalue()
        type_end = len(encoded) - 8  # an empty data field (4) and the reference count (4)
        pieces.append((n, encoded[:type_end], encoded[type_end + 4 :]))
    count = _U32.pack(len(public))
    # each public slot's JSON around its "data" member, made once: only the data is per row
    shapes = []
    for n in public:
        marked = orjson.dumps({**value_to_json(replace(layout[n], data=b"")), "data": _MARK})
        before, _, after = marked.partition(orjson.dumps(_MARK))
        shapes.append((before, after))
    if not public:
        empty = PublicAnswer(count, b"[]", restricted)
        return lambda datas: empty
    # what lies between two slots' data is constant: one piece each, the first and the last
    # with the value count and the list's brackets
    wire = [count + pieces[0][1]]
    wire += [tail + head for (_, _, tail), (_, head, _) in itertools.pairwise(pieces)]
    wire.append(pieces[-1][2])
    json = [b"[" + shapes[0][0]]
    json += [after + b"," + before for (_, after), (before, _) in itertools.pairwise(shapes)]
    json.append(shapes[-1][1] + b"]")
    return _unrolled(public, wire, json, [_data_json(layout[n].type) for n in public], restricted)


def _unrolled(
    public: Sequence[int],
    wire: Sequence[bytes],
    json: Sequence[bytes],
    fragments: Sequence[tuple[dict[bytes, bytes], Callable[[bytes], bytes]]],
    restricted: bool,
) -> Callable[[Sequence[bytes]], PublicAnswer]:
    """The layout's encoder as straight-line code, one per layout: a bulk load calls it for
    every record, and a loop over the slots cost about half of its time. ``public``: the
    slots whose data go in, in order; ``wire``/``json``: the constant bytes around them;
    ``fragments``: each slot's (memo, renderer) of its JSON ``data`` member."""
    names: dict[str, Any] = {"_join": b"".join, "_pack": _U32.pack, "_answer": PublicAnswer}
    names["_restricted"] = restricted
    lines = ["def encode(datas):"]
    wire_parts, json_parts = [], []
    for k, n in enumerate(public):
        names[f"W{k}"], names[f"J{k}"] = wire[k], json[k]
        names[f"m{k}"], names[f"r{k}"] = fragments[k]
        lines.append(f" d{k} = datas[{int(n):d}]")
        lines.append(f" f{k} = m{k}.get(d{k}) or r{k}(d{k})")
        wire_parts += [f"W{k}", f"_pack(len(d{k}))", f"d{k}"]
        json_parts += [f"J{k}", f"f{k}"]
    last = len(public)
    names[f"W{last}"], names[f"J{last}"] = wire[last], json[last]
    wire_parts.append(f"W{last}")
    json_parts.append(f"J{last}")
    lines.append(
        f" return _answer(_join(({', '.join(wire_parts)})), _join(({', '.join(json_parts)})),"
        " _restricted)"
    )
    exec("\n".join(lines), names)  # noqa: S102 (our own text: names and ints only)
    return names["encode"]


_STRING_HEAD = b'{"format":"string","value":'
_ASCII_TEXT = re.compile(rb"[\x09\x0a\x0d\x20-\x7e]*")  # what ``looks_like_text`` passes
_MEMO_ENTRIES = 4096  # per slot of a layout: a load's repeated texts (batch, date, admin)


def _data_json(type_name: str) -> tuple[dict[bytes, bytes], Callable[[bytes], bytes]]:
    """``orjson.dumps(data_to_json(type_name)(data))`` as a function of the data, faster:
    (memo, render), where the memo maps data already seen to its JSON and ``render`` makes
    (and remembers) the JSON of other data.

    Why: rendering each value's ``data`` member was two thirds of a bulk load's answer
    encoding (docs/performance.md). Rows of a load repeat many texts (a batch number, a date,
    the HS_ADMIN value), so each slot remembers the JSON of the data it saw last (bounded);
    untyped printable ASCII, the usual field, is spelled without building a dict. Byte for
    byte the same JSON (tests/wire/test_public_answer.py)."""
    convert = data_to_json(type_name)
    plain = lookup(type_name) is None
    memo: dict[bytes, bytes] = {}
    match = _ASCII_TEXT.fullmatch

    def render(data: bytes) -> bytes:
        if plain and match(data) is not None:
            out = _STRING_HEAD + orjson.dumps(data.decode("ascii")) + b"}"
        else:
            out = orjson.dumps(convert(data))
        if len(memo) >= _MEMO_ENTRIES:
            memo.clear()
        memo[data] = out
        return out

    return memo, render


class PublicAnswers:
    """The encoder a store is given (``store.base.AnswerEncoder``): one per process."""

    def __call__(self, values: Sequence[HandleValue]) -> PublicAnswer | None:
        return encode_public_answer(values)

    def layout(
        self, layout: Sequence[HandleValue]
    ) -> Callable[[Sequence[bytes]], PublicAnswer | None]:
        return layout_encoder(layout)


ENCODER = PublicAnswers()


def _index(v: HandleValue) -> int:
    return v.index


def _restricted(v: HandleValue) -> bool:
    perms = int(v.permissions)
    return not perms & _PUBLIC_READ and bool(perms & _ADMIN_READ)


# -- at read time: the binary protocol --------------------------------------------------------
def plain_datagram(message: bytes) -> tuple[str, bool] | None:
    """(the handle, whether PO is set) of a request a stored public answer may serve, read by
    offset from a whole message (envelope included) without building one; None for anything
    else.

    Served: one whole anonymous resolution (no session, no credential, not compressed or
    encrypted), asking for every value (no index, no type), without CT, ENC, REC, AT or RD,
    in a protocol version this node answers. Its answer is then exactly the full path's.
    """
    query = datagram_query(message)
    return None if query is None else (query[0], query[1])


# a datagram's envelope, header and handle length, read in one unpack (``datagram_query``)
_DATAGRAM = struct.Struct(">4sI4sIIIIIHBxIII")
_LISTS_END = b"\x00" * 8  # no index, no type


def datagram_query(message: bytes) -> tuple[str, bool, bytes, int, int, int] | None:
    """``plain_datagram``'s decision with what ``datagram_answer`` needs: (the handle, PO
    set, the reply's first envelope bytes, the flags it echoes, the recursion count, where
    the handle ends); None for anything the full path must answer. One ``unpack_from`` of the
    fixed fields instead of a slice and an integer per field: this runs for every datagram
    the response cache misses (docs/performance.md, round 7)."""
    size = len(message)
    if size < _MIN_PLAIN:
        return None
    (
        version,
        session,
        _request_id,
        sequence,
        length,
        opcode,
        response_code,
        flags,
        _site_serial,
        recursion,
        _expiration,
        body_length,
        handle_length,
    ) = _DATAGRAM.unpack_from(message)
    if (
        session
        or sequence
        or length != size - ENVELOPE_SIZE
        or version[2] & _NOT_PLAIN_ENVELOPE
        or opcode != _RESOLUTION
        or response_code
        or flags & _NOT_PLAIN_FLAGS
        or recursion > MAX_RECURSION_COUNT
        or body_length != 12 + handle_length
    ):
        return None
    rest = size - ENVELOPE_SIZE - HEADER_SIZE - body_length
    handle_end = _DATAGRAM.size + handle_length
    if not (rest == 0 or (rest == 4 and message[-4:] == _NO_CREDENTIAL)):
        return None  # a credential, or a length that does not add up
    if message[handle_end : handle_end + 8] != _LISTS_END:
        return None
    prefix = _reply_prefix(version)
    if prefix is None:
        return None
    try:
        handle = message[_DATAGRAM.size : handle_end].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return handle, bool(flags & _PO), prefix, flags & _ECHOED, recursion, handle_end


def datagram_answer(
    message: bytes,
    query: tuple[str, bool, bytes, int, int, int],
    answer: bytes,
    *,
    site_serial: int,
    expiration: int,
) -> bytes:
    """``resolution_answer`` for a datagram ``datagram_query`` accepted: the same bytes."""
    _, _, prefix, echoed, recursion, handle_end = query
    return _answer_bytes(
        prefix,
        message[8:12],
        message[ENVELOPE_SIZE + HEADER_SIZE : handle_end],
        echoed,
        recursion,
        answer,
        site_serial,
        expiration,
    )


def plain_envelope(envelope: Envelope) -> bytes | None:
    """The version bytes ``resolution_answer`` takes, of a decoded envelope a stored answer
    may serve (no session, in clear, a version this node answers); None otherwise."""
    if envelope.session_id or envelope.encrypted or envelope.compressed or envelope.sequence:
        return None
    version = bytes(
        (envelope.major, envelope.minor, envelope.suggest_major, envelope.suggest_minor)
    )
    return version if _reply_prefix(version) is not None else None


def plain_payload(payload: bytes) -> tuple[str, bool] | None:
    """``plain_datagram`` of what follows the envelope (its header, body and credential)."""
    if len(payload) < _MIN_PLAIN - ENVELOPE_SIZE:
        return None
    if not peek.is_resolution(payload) or payload[4:8] != _NO_CREDENTIAL:
        return None  # another operation, or a response
    flags = peek.op_flags(payload)
    if flags & _NOT_PLAIN_FLAGS or payload[14] > MAX_RECURSION_COUNT:
        return None
    body_length = peek.body_length(payload)
    rest = len(payload) - HEADER_SIZE - body_length
    if not (rest == 0 or (rest == 4 and payload[-4:] == _NO_CREDENTIAL)):
        return None  # a credential, or a length that does not add up
    handle_length = int.from_bytes(payload[HEADER_SIZE : HEADER_SIZE + 4], "big")
    if body_length != 12 + handle_length:
        return None  # index or type lists, or trailing fields (the IDIS dialect's)
    lists = HEADER_SIZE + 4 + handle_length
    if payload[lists : lists + 8] != bytes(8):
        return None
    try:
        handle = payload[HEADER_SIZE + 4 : lists].decode("utf-8")
    except UnicodeDecodeError:
        return None
    return handle, bool(flags & _PO)


def resolution_answer(
    version: bytes,
    request_id: bytes,
    payload: bytes,
    answer: bytes,
    *,
    site_serial: int,
    expiration: int,
) -> bytes:
    """The encoded answer to a request whose envelope's first four bytes are ``version``
    (``plain_envelope``), whose request id is ``request_id`` (four bytes) and whose payload
    ``plain_payload`` accepted, with ``answer`` (``PublicAnswer.wire``) as its value list:
    the bytes ``encode_message`` gives the full path's response, envelope included."""
    prefix = _reply_prefix(version)
    assert prefix is not None  # plain_datagram / plain_envelope checked it
    handle_end = HEADER_SIZE + 4 + int.from_bytes(payload[HEADER_SIZE : HEADER_SIZE + 4], "big")
    return _answer_bytes(
        prefix,
        request_id,
        payload[HEADER_SIZE:handle_end],
        peek.op_flags(payload) & _ECHOED,
        payload[14],
        answer,
        site_serial,
        expiration,
    )


def _answer_bytes(
    prefix: bytes,
    request_id: bytes,
    handle: bytes,
    echoed: int,
    recursion: int,
    answer: bytes,
    site_serial: int,
    expiration: int,
) -> bytes:
    """Envelope, header, the request's handle field (its length, then its bytes, as the
    request spells it), the value list and an empty credential."""
    body_length = len(handle) + len(answer)
    header = _HEADER.pack(
        _RESOLUTION,
        _SUCCESS,
        echoed,
        site_serial,
        recursion,
        0,
        expiration & 0xFFFFFFFF,
        body_length,
    )
    length = _U32.pack(HEADER_SIZE + body_length + 4)
    return b"".join(
        (prefix, request_id, _NO_CREDENTIAL, length, header, handle, answer, _NO_CREDENTIAL)
    )


@functools.lru_cache(maxsize=64)
def _reply_prefix(version: bytes) -> bytes | None:
    """Envelope bytes 0-7 of the reply to a request whose first four bytes are ``version``
    (versions, our suggestion, session 0); None for a version this node does not answer."""
    suggest_major = version[2] & 0x03
    suggested = (suggest_major, version[3]) if suggest_major else (version[0], version[1])
    try:
        major, minor = reply_version(
            Envelope(
                major=version[0],
                minor=version[1],
                suggest_major=suggested[0],
                suggest_minor=suggested[1],
            )
        )
    except ProtocolError:
        return None
    return _ENVELOPE.pack(major, minor, OUR_VERSION[0], OUR_VERSION[1], 0, 0, 0, 0)[:8]


# -- at read time: the REST API ---------------------------------------------------------------
def rest_body(handle: str, answer: bytes) -> bytes:
    """The REST body of an anonymous resolution whose ``values`` are ``answer``
    (``PublicAnswer.json``): ``orjson.dumps`` of the full path's dict, byte for byte."""
    return b'{"responseCode":1,"handle":' + orjson.dumps(handle) + b',"values":' + answer + b"}"
