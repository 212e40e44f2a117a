"""The signed streams that follow a replication answer (HSJ's ``SignedOutputStream``).

A primary answers OC_RETRIEVE_TXN_LOG (1001) and OC_DUMP_HANDLES (1002) with one message and
then, on the same TCP connection, a stream of records, each block followed by a signature of
the bytes written since the previous one (HSJ ``SignedOutputStream.signBlock``; the verifier
is ``SignedInputStream.verifyBlock``). Layouts, all integers big-endian:

Stream head (``SignedOutputStream``)::

    int32 stream type   0 = signed with the server's key, -1 = unsigned
    signed only:  int32 length + hash id ("SHA-256", "SHA1")
    then blocks:  data, int32 signature length, signature over the block's data

Transactions (``RetrieveTxnResponse``, format 1)::

    block: int32 format (1), int32 status (1 = redump needed, 2 = sending transactions)
    block per transaction: byte 1, int64 txn id, int32 length + handle, byte action,
           int64 date (ms); create/update only: int32 count, count x (int32 length + value)
    block: byte 0, int64 date the receiver sends back as its next ``last_query_date``

Dump (``DumpHandlesResponse``, format 2)::

    block: int32 format (2)
    block: byte 0, int64 date, int64 txn id   (where the receiver resumes the log from)
    block per handle: byte 1, int32 length + handle, int32 count, count x (int32 + value)
    block per homed prefix: byte 2, int32 length + "0.NA/<prefix>"
    byte -1, unsigned: the end

Governance (an idnode extension answering OC_RETRIEVE_GOVERNANCE, 1100; format 3)::

    block: int32 format (3), int32 status (1 = a full copy follows, 2 = changes follow)
    block per page: byte 1, int64 position after the page, int32 length + JSON changes
           (``store.capture.encode_changes``: [table, key, row or null], ...)
    block: byte 0, int64 position the receiver keeps

Sans-I/O: ``StreamWriter`` turns records into bytes with a ``sign`` callable, and
``StreamParser`` turns bytes fed in any pieces into events, checking each block with a
``verify`` callable. No socket, no clock, no key handling of its own.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from idnode.errors import MalformedMessage
from idnode.model import HandleValue
from idnode.wire.values import decode_value, encode_value

STREAM_SIGNED = 0  # HSJ SignedInputStream.STREAM_TYPE_PK
STREAM_UNSIGNED = -1
HASH_ID = "SHA-256"

NEED_TO_REDUMP = 1
SENDING_TRANSACTIONS = 2

# HSJ Transaction.ACTION_*
ACTION_CREATE = 1
ACTION_DELETE = 2
ACTION_UPDATE = 3
ACTION_HOME_NA = 4
ACTION_UNHOME_NA = 5
WITH_VALUES = frozenset({ACTION_CREATE, ACTION_UPDATE})

# record types
_TXN_END, _TXN_HANDLE = 0, 1
_DUMP_INFO, _DUMP_HANDLE, _DUMP_PREFIX, _DUMP_DONE = 0, 1, 2, 0xFF

MAX_FIELD = 16 << 20  # one handle, value or signature: bounds what a peer can make us buffer

_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")

Sign = Callable[[bytes], bytes]
Verify = Callable[[bytes, bytes, str], bool]  # (signature, data, hash id) -> valid


# -- events ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TxnHead:
    status: int  # NEED_TO_REDUMP or SENDING_TRANSACTIONS


@dataclass(frozen=True, slots=True)
class TxnRecord:
    txn_id: int
    handle: str
    action: int
    date: int
    values: tuple[HandleValue, ...] = ()


@dataclass(frozen=True, slots=True)
class TxnEnd:
    date: int


@dataclass(frozen=True, slots=True)
class DumpInfo:
    date: int
    txn_id: int


@dataclass(frozen=True, slots=True)
class DumpHandle:
    handle: str
    values: tuple[HandleValue, ...]


@dataclass(frozen=True, slots=True)
class DumpPrefix:
    handle: str  # "0.NA/<prefix>", as HSJ scans its homed prefixes


@dataclass(frozen=True, slots=True)
class DumpDone:
    pass


@dataclass(frozen=True, slots=True)
class GovHead:
    full: bool  # a full copy follows: the receiver empties its governance tables first


@dataclass(frozen=True, slots=True)
class GovPage:
    position: int  # where the receiver stands once it applied the page (0 inside a full copy)
    changes: bytes  # JSON, ``store.capture.decode_changes``


@dataclass(frozen=True, slots=True)
class GovEnd:
    position: int


Event = (
    TxnHead | TxnRecord | TxnEnd | DumpInfo | DumpHandle | DumpPrefix | DumpDone
    | GovHead | GovPage | GovEnd
)  # fmt: skip

GOV_FULL, GOV_CHANGES = 1, 2
_GOV_END, _GOV_PAGE = 0, 1


# -- writing -----------------------------------------------------------------------------------
def _i32(v: int) -> bytes:
    return _I32.pack(v)


def _blob(data: bytes) -> bytes:
    return _I32.pack(len(data)) + data


def _values(values: Iterable[HandleValue]) -> bytes:
    encoded = [encode_value(v) for v in values]
    return _i32(len(encoded)) + b"".join(_blob(e) for e in encoded)


class StreamWriter:
    """Bytes of one stream; ``sign`` None writes an unsigned stream (HSJ accepts it only on
    a secure channel)."""

    def __init__(self, sign: Sign | None, hash_id: str = HASH_ID) -> None:
        self._sign = sign
        self.hash_id = hash_id

    def head(self) -> bytes:
        if self._sign is None:
            return _i32(STREAM_UNSIGNED)
        return _i32(STREAM_SIGNED) + _blob(self.hash_id.encode())

    def block(self, data: bytes) -> bytes:
        if self._sign is None:
            return data
        return data + _blob(self._sign(data))

    # transactions
    def txn_head(self, status: int) -> bytes:
        return self.block(_i32(1) + _i32(status))

    def txn(self, r: TxnRecord) -> bytes:
        data = bytes((_TXN_HANDLE,)) + _I64.pack(r.txn_id) + _blob(r.handle.encode())
        data += bytes((r.action,)) + _I64.pack(r.date)
        if r.action in WITH_VALUES:
            data += _values(r.values)
        return self.block(data)

    def txn_end(self, date: int) -> bytes:
        return self.block(bytes((_TXN_END,)) + _I64.pack(date))

    # dump
    def dump_head(self) -> bytes:
        return self.block(_i32(2))

    def dump_info(self, date: int, txn_id: int) -> bytes:
        return self.block(bytes((_DUMP_INFO,)) + _I64.pack(date) + _I64.pack(txn_id))

    def dump_handle(self, handle: str, values: Iterable[HandleValue]) -> bytes:
        return self.block(bytes((_DUMP_HANDLE,)) + _blob(handle.encode()) + _values(values))

    def dump_prefix(self, na_handle: str) -> bytes:
        return self.block(bytes((_DUMP_PREFIX,)) + _blob(na_handle.encode()))

    @staticmethod
    def dump_done() -> bytes:
        return bytes((_DUMP_DONE,))

    # governance (idnode)
    def gov_head(self, full: bool) -> bytes:
        return self.block(_i32(3) + _i32(GOV_FULL if full else GOV_CHANGES))

    def gov_page(self, position: int, changes: bytes) -> bytes:
        return self.block(bytes((_GOV_PAGE,)) + _I64.pack(position) + _blob(changes))

    def gov_end(self, position: int) -> bytes:
        return self.block(bytes((_GOV_END,)) + _I64.pack(position))


# -- reading -----------------------------------------------------------------------------------
class _Incomplete(Exception):
    """More bytes are needed: the parser retries the record when they come."""


class _Cursor:
    def __init__(self, buf: bytearray, pos: int) -> None:
        self.buf, self.pos = buf, pos

    def take(self, n: int) -> bytes:
        if len(self.buf) - self.pos < n:
            raise _Incomplete
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def i32(self) -> int:
        return _I32.unpack(self.take(4))[0]

    def i64(self) -> int:
        return _I64.unpack(self.take(8))[0]

    def byte(self) -> int:
        return self.take(1)[0]

    def blob(self, field: str) -> bytes:
        n = self.i32()
        if not 0 <= n <= MAX_FIELD:
            raise MalformedMessage(f"length {n} out of bounds", field=field)
        return self.take(n)

    def text(self, field: str) -> str:
        try:
            return self.blob(field).decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedMessage("invalid UTF-8", field=field) from None

    def values(self) -> tuple[HandleValue, ...]:
        count = self.i32()
        if not 0 <= count <= 1 << 20:
            raise MalformedMessage(f"{count} values", field="values")
        return tuple(decode_value(self.blob("value")) for _ in range(count))


class StreamParser:
    """Events from a transaction stream (``dump=False``), a dump stream (``dump=True``) or
    a governance stream (``governance=True``).

    ``verify`` None accepts an unsigned stream (and ignores nothing: a signed stream without
    a verifier is refused, so a forged signature can never pass unnoticed). Raises
    ``MalformedMessage`` on a bad record or a signature that does not verify.
    """

    def __init__(self, *, dump: bool, verify: Verify | None, governance: bool = False) -> None:
        self.dump = dump
        self.governance = governance
        self._verify = verify
        self._buf = bytearray()
        self._signed: bool | None = None
        self.hash_id = ""
        self._started = False  # the format block was read
        self.done = False

    def feed(self, data: bytes) -> list[Event]:
        self._buf += data
        events: list[Event] = []
        while not self.done:
            cur = _Cursor(self._buf, 0)
            try:
                event = self._next(cur)
            except _Incomplete:
                break
            del self._buf[: cur.pos]
            if event is not None:
                events.append(event)
        return events

    def _check(self, cur: _Cursor, start: int) -> None:
        """The signature after the block that began at ``start``."""
        if not self._signed:
            return
        data = bytes(cur.buf[start : cur.pos])
        signature = cur.blob("signature")
        if self._verify is None or not self._verify(signature, data, self.hash_id):
            raise MalformedMessage("invalid signature on the replication stream", field="stream")

    def _next(self, cur: _Cursor) -> Event | None:
        if self._signed is None:
            kind = cur.i32()
            if kind == STREAM_SIGNED:
                self.hash_id = cur.text("hash_id")
                self._signed = True
            elif kind == STREAM_UNSIGNED:
                if self._verify is not None:
                    raise MalformedMessage("unsigned replication stream", field="stream")
                self._signed = False
            else:
                raise MalformedMessage(f"unknown stream type {kind}", field="stream")
            return None
        start = cur.pos
        if not self._started:
            version = cur.i32()
            status = 0 if self.dump else cur.i32()
            self._check(cur, start)
            self._started = True
            expected = 3 if self.governance else 2 if self.dump else 1
            if version != expected:
                raise MalformedMessage(f"stream format {version} not supported", field="format")
            if self.governance:
                return GovHead(status == GOV_FULL)
            return None if self.dump else TxnHead(status)
        kind = cur.byte()
        if self.governance:
            return self._gov(cur, kind, start)
        return self._dump_record(cur, kind, start) if self.dump else self._txn(cur, kind, start)

    def _gov(self, cur: _Cursor, kind: int, start: int) -> Event:
        if kind == _GOV_END:
            event: Event = GovEnd(cur.i64())
        elif kind == _GOV_PAGE:
            event = GovPage(cur.i64(), cur.blob("changes"))
        else:
            raise MalformedMessage(f"unknown governance record type {kind}", field="record")
        self._check(cur, start)
        self.done = isinstance(event, GovEnd)
        return event

    def _txn(self, cur: _Cursor, kind: int, start: int) -> Event:
        if kind == _TXN_END:
            event: Event = TxnEnd(cur.i64())
        elif kind == _TXN_HANDLE:
            txn_id, handle = cur.i64(), cur.text("handle")
            action, date = cur.byte(), cur.i64()
            values = cur.values() if action in WITH_VALUES else ()
            event = TxnRecord(txn_id, handle, action, date, values)
        else:
            raise MalformedMessage(f"unknown transaction record type {kind}", field="record")
        self._check(cur, start)
        self.done = isinstance(event, TxnEnd)  # only once its signature is read and checked
        return event

    def _dump_record(self, cur: _Cursor, kind: int, start: int) -> Event:
        if kind == _DUMP_DONE:
            self.done = True
            return DumpDone()
        if kind == _DUMP_INFO:
            event: Event = DumpInfo(cur.i64(), cur.i64())
        elif kind == _DUMP_HANDLE:
            event = DumpHandle(cur.text("handle"), cur.values())
        elif kind == _DUMP_PREFIX:
            event = DumpPrefix(cur.text("prefix"))
        else:
            raise MalformedMessage(f"unknown dump record type {kind}", field="record")
        self._check(cur, start)
        return event


# -- txn ids across promotions -------------------------------------------------------------------
EPOCH_SHIFT = 40  # a txn id is (epoch << 40) | serial: promotion starts a new epoch


def txn_id(epoch: int, serial: int) -> int:
    return (epoch << EPOCH_SHIFT) | serial


def split_txn_id(value: int) -> tuple[int, int]:
    """(epoch, serial) of a txn id on the wire."""
    return value >> EPOCH_SHIFT, value & ((1 << EPOCH_SHIFT) - 1)
