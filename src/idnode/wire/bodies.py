"""Message bodies (RFC 3652 section 3), one frozen dataclass per body, and their dispatch.

Which body a message carries depends on (opcode, response code): a request (code 0) by its
opcode, a success (code 1) by its opcode, a referral (302/303), a challenge (402), and any
other code an error. Layouts follow RFC 3652 as amended by what the Handle.Net Java library
(HSJ) actually sends; deviations are noted on each class.

The request digest that precedes the body of a response with the RD flag is *not* part of
the body bytes handled here; ``idnode.wire.message`` reads and writes it. The one exception
in meaning is ``ChallengeResponse``, whose digest field is that same slot.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar

from idnode.codes import OpCode, ResponseCode
from idnode.encoding import Reader, Writer
from idnode.errors import MalformedMessage
from idnode.model import HandleValue
from idnode.wire.values import read_values, write_values

# HSJ's opcode for "list homed prefixes"; ``OpCode.LIST_NAS`` (106) is list-derived-prefixes
# in HSJ/DO-IRP. Both carry the same bodies.
OP_LIST_HOMED_NAS = 302


# --------------------------------------------------------------------------- request digest


class DigestAlgorithm(IntEnum):
    """Hash ids of the request digest (HSJ ``Common.HASH_CODE_*``)."""

    MD5_OLD_FORMAT = 0  # pre-2.1: no id byte, a 4-byte length + MD5 bytes
    MD5 = 1
    SHA1 = 2
    SHA256 = 3


DIGEST_SIZES = {DigestAlgorithm.MD5: 16, DigestAlgorithm.SHA1: 20, DigestAlgorithm.SHA256: 32}
_HASHES: dict[int, Callable[..., Any]] = {
    DigestAlgorithm.MD5_OLD_FORMAT: hashlib.md5,
    DigestAlgorithm.MD5: hashlib.md5,
    DigestAlgorithm.SHA1: hashlib.sha1,
    DigestAlgorithm.SHA256: hashlib.sha256,
}


@dataclass(frozen=True, slots=True)
class RequestDigest:
    """A digest of the request's header + body, echoed so the client can match its request."""

    algorithm: int
    digest: bytes

    def __post_init__(self) -> None:
        if self.algorithm not in _HASHES:
            raise ValueError(f"unknown request digest algorithm {self.algorithm}")
        size = DIGEST_SIZES.get(self.algorithm)  # type: ignore[call-overload]
        if size is not None and len(self.digest) != size:
            raise ValueError(f"digest algorithm {self.algorithm} needs {size} bytes")
        if len(self.digest) >= 1 << 24:  # the old format's length must start with a 0 byte
            raise ValueError("request digest too long")


def digest_request(payload_bytes: bytes, algorithm: int = DigestAlgorithm.SHA256) -> RequestDigest:
    """Digest of a request as HSJ computes it.

    ``payload_bytes`` must be the request's encoded header + body exactly as received (HSJ's
    ``getEncodedMessageBody``): no envelope and no credential section.
    """
    try:
        hash_fn = _HASHES[algorithm]
    except KeyError:
        raise ValueError(f"unknown request digest algorithm {algorithm}") from None
    return RequestDigest(int(algorithm), hash_fn(bytes(payload_bytes)).digest())


def digest_algorithm_for(version: tuple[int, int]) -> DigestAlgorithm:
    """The digest HSJ puts in a response of that version: SHA-256 from 2.7, SHA-1 from 2.1."""
    if version >= (2, 7):
        return DigestAlgorithm.SHA256
    if version >= (2, 1):
        return DigestAlgorithm.SHA1
    return DigestAlgorithm.MD5_OLD_FORMAT


def read_request_digest(r: Reader, field: str = "request_digest") -> RequestDigest:
    """One id byte then a fixed-size digest; id 0 is the old format (4-byte length + bytes)."""
    algorithm = r.u8(field + ".algorithm")
    if algorithm == DigestAlgorithm.MD5_OLD_FORMAT:
        # that zero byte was the high byte of a 4-byte length: read the other three
        length = (r.u8(field + ".length") << 16) | r.u16(field + ".length")
        return RequestDigest(0, r.raw(length, field))
    size = DIGEST_SIZES.get(algorithm)  # type: ignore[call-overload]
    if size is None:
        raise MalformedMessage(f"unknown digest algorithm {algorithm}", field=field)
    return RequestDigest(algorithm, r.raw(size, field))


def write_request_digest(w: Writer, d: RequestDigest) -> None:
    if d.algorithm == DigestAlgorithm.MD5_OLD_FORMAT:
        w.bytes32(d.digest)
    else:
        w.u8(d.algorithm).raw(d.digest)


# --------------------------------------------------------------------------- helpers


def _read_ints(r: Reader, field: str) -> tuple[int, ...]:
    n = r.count(field, 4)
    return tuple(r.i32(field) for _ in range(n))


def _write_ints(w: Writer, items: tuple[int, ...]) -> None:
    w.u32(len(items))
    for i in items:
        w.u32(i)


def _read_strings(r: Reader, field: str) -> tuple[str, ...]:
    n = r.count(field, 4)
    return tuple(r.utf8(field) for _ in range(n))


def _write_strings(w: Writer, items: tuple[str, ...]) -> None:
    w.u32(len(items))
    for s in items:
        w.utf8(s)


def _read_optional_handle(r: Reader, field: str) -> str | None:
    return r.utf8(field) if r.remaining else None


class _Body:
    """Mixin: ``_write`` renders the body into a Writer, ``_read`` parses a whole body."""

    __slots__ = ()
    # bodies whose HSJ encoding may leave trailing bytes (see SessionSetupRequest)
    _lenient_tail: ClassVar[bool] = False

    def _write(self, w: Writer) -> None:  # pragma: no cover - every body overrides
        raise NotImplementedError

    @classmethod
    def _read(cls, r: Reader) -> _Body:  # pragma: no cover - every body overrides
        raise NotImplementedError


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True, slots=True)
class ResolutionRequest(_Body):
    """Handle, then index list and type list (both may be empty = everything).

    ``auth``: the IDIS SDK (Teleinfo ``Encoder.encodeResolutionRequest``) always appends one
    more length-prefixed field, an "auth string" for recursive identity passing, empty
    unless its caller gave one. None when absent (every Handle.Net client); written only when
    not None. It is data, never a credential (``transport.idis``).
    """

    handle: str
    indexes: tuple[int, ...] = ()
    types: tuple[str, ...] = ()
    auth: bytes | None = None

    def _write(self, w: Writer) -> None:
        w.utf8(self.handle)
        _write_ints(w, self.indexes)
        _write_strings(w, self.types)
        if self.auth is not None:
            w.bytes32(self.auth)

    @classmethod
    def _read(cls, r: Reader) -> ResolutionRequest:
        handle = r.utf8("handle")
        indexes = _read_ints(r, "indexes")
        types = _read_strings(r, "types")
        auth = r.bytes32("auth") if r.remaining else None
        return cls(handle, indexes, types, auth)


@dataclass(frozen=True, slots=True)
class ResolutionResponse(_Body):
    handle: str
    values: tuple[HandleValue, ...] = ()

    def _write(self, w: Writer) -> None:
        w.utf8(self.handle)
        write_values(w, self.values)

    @classmethod
    def _read(cls, r: Reader) -> ResolutionResponse:
        handle = r.utf8("handle")
        return cls(handle, tuple(read_values(r)))


@dataclass(frozen=True, slots=True)
class GetSiteInfoRequest(_Body):
    """RFC 3652 has no body; HSJ sends a handle (usually "/"). Both are accepted."""

    handle: str | None = None

    def _write(self, w: Writer) -> None:
        if self.handle is not None:
            w.utf8(self.handle)

    @classmethod
    def _read(cls, r: Reader) -> GetSiteInfoRequest:
        return cls(_read_optional_handle(r, "handle"))


@dataclass(frozen=True, slots=True)
class SiteInfoResponse(_Body):
    """The raw HS_SITE record filling the rest of the body (no length prefix)."""

    site: bytes

    def _write(self, w: Writer) -> None:
        w.raw(self.site)

    @classmethod
    def _read(cls, r: Reader) -> SiteInfoResponse:
        return cls(r.rest())


@dataclass(frozen=True, slots=True)
class ServiceReferralResponse(_Body):
    """Codes 302/303: the service handle, optionally followed by its HS_SITE/HS_SERV values.

    ``values`` None means the count is absent (HSJ distinguishes that from an empty list).
    """

    handle: str
    values: tuple[HandleValue, ...] | None = None

    def _write(self, w: Writer) -> None:
        w.utf8(self.handle)
        if self.values is not None:
            write_values(w, self.values)

    @classmethod
    def _read(cls, r: Reader) -> ServiceReferralResponse:
        handle = r.utf8("handle")
        values = tuple(read_values(r)) if r.remaining else None
        return cls(handle, values)


# --------------------------------------------------------------------------- administration


@dataclass(frozen=True, slots=True)
class CreateHandleRequest(_Body):
    handle: str
    values: tuple[HandleValue, ...] = ()

    def _write(self, w: Writer) -> None:
        w.utf8(self.handle)
        write_values(w, self.values)

    @classmethod
    def _read(cls, r: Reader) -> CreateHandleRequest:
        handle = r.utf8("handle")
        return cls(handle, tuple(read_values(r)))


@dataclass(frozen=True, slots=True)
class CreateHandleResponse(_Body):
    """Empty body, or (HSJ, e.g. after MINT) the handle that was created."""

    handle: str | None = None

    def _write(self, w: Writer) -> None:
        if self.handle is not None:
            w.utf8(self.handle)

    @classmethod
    def _read(cls, r: Reader) -> CreateHandleResponse:
        return cls(_read_optional_handle(r, "handle"))


@dataclass(frozen=True, slots=True)
class DeleteHandleRequest(_Body):
    handle: str

    def _write(self, w: Writer) -> None:
        w.utf8(self.handle)

    @classmethod
    def _read(cls, r: Reader) -> DeleteHandleRequest:
        return cls(r.utf8("handle"))


@dataclass(frozen=True, slots=True)
class AddValueRequest(_Body):
    handle: str
    values: tuple[HandleValue, ...] = ()

    def _write(self, w: Writer) -> None:
        w.utf8(self.handle)
        write_values(w, self.values)

    @classmethod
    def _read(cls, r: Reader) -> AddValueRequest:
        handle = r.utf8("handle")
        return cls(handle, tuple(read_values(r)))


@dataclass(frozen=True, slots=True)
class RemoveValueRequest(_Body):
    handle: str
    indexes: tuple[int, ...] = ()

    def _write(self, w: Writer) -> None:
        w.utf8(self.handle)
        _write_ints(w, self.indexes)

    @classmethod
    def _read(cls, r: Reader) -> RemoveValueRequest:
        handle = r.utf8("handle")
        return cls(handle, _read_ints(r, "indexes"))


@dataclass(frozen=True, slots=True)
class ModifyValueRequest(_Body):
    handle: str
    values: tuple[HandleValue, ...] = ()

    def _write(self, w: Writer) -> None:
        w.utf8(self.handle)
        write_values(w, self.values)

    @classmethod
    def _read(cls, r: Reader) -> ModifyValueRequest:
        handle = r.utf8("handle")
        return cls(handle, tuple(read_values(r)))


@dataclass(frozen=True, slots=True)
class _PrefixBody(_Body):
    """A body that is one handle naming a prefix, e.g. ``0.NA/20.500``."""

    prefix: str

    def _write(self, w: Writer) -> None:
        w.utf8(self.prefix)

    @classmethod
    def _read(cls, r: Reader) -> _PrefixBody:
        return cls(r.utf8("prefix"))


@dataclass(frozen=True, slots=True)
class ListHandlesRequest(_PrefixBody):
    """List the handles under a prefix; ``prefix`` is the prefix handle (``0.NA/20.500``)."""


@dataclass(frozen=True, slots=True)
class ListNAsRequest(_PrefixBody):
    """List homed (opcode 302) or derived (opcode 106) prefixes."""


@dataclass(frozen=True, slots=True)
class HomeNARequest(_PrefixBody):
    pass


@dataclass(frozen=True, slots=True)
class UnhomeNARequest(_PrefixBody):
    pass


@dataclass(frozen=True, slots=True)
class ListHandlesResponse(_Body):
    """One chunk of a listing; with the CN flag more messages follow on the connection."""

    handles: tuple[str, ...] = ()

    def _write(self, w: Writer) -> None:
        _write_strings(w, self.handles)

    @classmethod
    def _read(cls, r: Reader) -> ListHandlesResponse:
        return cls(_read_strings(r, "handles"))


@dataclass(frozen=True, slots=True)
class ListNAsResponse(_Body):
    prefixes: tuple[str, ...] = ()

    def _write(self, w: Writer) -> None:
        _write_strings(w, self.prefixes)

    @classmethod
    def _read(cls, r: Reader) -> ListNAsResponse:
        return cls(_read_strings(r, "prefixes"))


# --------------------------------------------------------------------------- authentication


@dataclass(frozen=True, slots=True)
class ChallengeResponse(_Body):
    """Code 402: the server's nonce. The digest travels in the request-digest slot before the
    body (HSJ always sets RD on a challenge), so the body bytes are only the nonce; a 2.0
    server appends an old-format digest after the nonce instead, which is accepted on read.
    """

    nonce: bytes
    digest: RequestDigest

    def _write(self, w: Writer) -> None:
        w.bytes32(self.nonce)

    @classmethod
    def _read_with(cls, r: Reader, digest: RequestDigest | None) -> ChallengeResponse:
        nonce = r.bytes32("nonce")
        if digest is None:
            if not r.remaining:
                raise MalformedMessage("challenge without a request digest", field="digest")
            old = r.bytes32("digest")
            if len(old) >= 1 << 24:
                raise MalformedMessage("old-format digest too long", field="digest")
            digest = RequestDigest(DigestAlgorithm.MD5_OLD_FORMAT, old)
        return cls(nonce, digest)


@dataclass(frozen=True, slots=True)
class ChallengeAnswerRequest(_Body):
    """Opcode 200: the client's answer, signed (HS_PUBKEY) or MAC'd (HS_SECKEY) nonce+digest."""

    auth_type: str
    key_handle: str
    key_index: int
    signature: bytes

    def _write(self, w: Writer) -> None:
        w.utf8(self.auth_type).utf8(self.key_handle).u32(self.key_index).bytes32(self.signature)

    @classmethod
    def _read(cls, r: Reader) -> ChallengeAnswerRequest:
        auth_type = r.utf8("auth_type")
        key_handle = r.utf8("key_handle")
        key_index = r.i32("key_index")
        return cls(auth_type, key_handle, key_index, r.bytes32("signature"))


@dataclass(frozen=True, slots=True)
class VerifyResponseRequest(_Body):
    """Opcode 201: ask the server homing a secret key to check a client's answer.

    HSJ always writes the digest in the old, length-prefixed format (algorithm 0) and reads
    either form.
    """

    key_handle: str
    key_index: int
    nonce: bytes
    digest: RequestDigest
    signature: bytes

    def _write(self, w: Writer) -> None:
        w.utf8(self.key_handle).u32(self.key_index).bytes32(self.nonce)
        write_request_digest(w, self.digest)
        w.bytes32(self.signature)

    @classmethod
    def _read(cls, r: Reader) -> VerifyResponseRequest:
        key_handle = r.utf8("key_handle")
        key_index = r.i32("key_index")
        nonce = r.bytes32("nonce")
        digest = read_request_digest(r, "digest")
        return cls(key_handle, key_index, nonce, digest, r.bytes32("signature"))


@dataclass(frozen=True, slots=True)
class VerifyResponseResponse(_Body):
    """One byte; bit 0 set when the answer was valid."""

    valid: bool

    def _write(self, w: Writer) -> None:
        w.u8(1 if self.valid else 0)

    @classmethod
    def _read(cls, r: Reader) -> VerifyResponseResponse:
        return cls(bool(r.u8("valid") & 0x01))


@dataclass(frozen=True, slots=True)
class LoginIdSystemRequest(_Body):
    """Opcode 2001, the IDIS login (Teleinfo ``MsgConverter.convertLoginIDSystemReqToBytes``):
    the user's handle, then its key index. The SDK sends it without a credential section.
    Its success answer has an empty body (the SDK reads none)."""

    handle: str
    index: int = 0

    def _write(self, w: Writer) -> None:
        w.utf8(self.handle).u32(self.index)

    @classmethod
    def _read(cls, r: Reader) -> LoginIdSystemRequest:
        handle = r.utf8("handle")
        return cls(handle, r.i32("index") if r.remaining else 0)


# --------------------------------------------------------------------------- sessions

KEY_EXCHANGE_NONE = 0
KEY_EXCHANGE_CIPHER_CLIENT = 1  # client sends its public key
KEY_EXCHANGE_CIPHER_SERVER = 2  # use the server's key
KEY_EXCHANGE_CIPHER_HDL = 3  # key held in a handle value
KEY_EXCHANGE_DH = 4  # Diffie-Hellman, client sends its DH public key


@dataclass(frozen=True, slots=True)
class SessionSetupRequest(_Body):
    """Opcode 400 (HSJ layout): mode (2 bytes), timeout, identity handle + index, then per
    mode a public key (1, 4) or an exchange-key handle + index (3).

    HSJ sizes the mode as 4 bytes but writes 2, so its bodies end in two stray bytes; any
    trailing bytes are therefore ignored on read.
    """

    mode: int
    timeout: int = 0
    identity_handle: str = ""
    identity_index: int = 0
    public_key: bytes = b""
    exchange_key_handle: str = ""
    exchange_key_index: int = 0

    _lenient_tail: ClassVar[bool] = True

    def _write(self, w: Writer) -> None:
        w.u16(self.mode).u32(self.timeout).utf8(self.identity_handle).u32(self.identity_index)
        if self.mode in (KEY_EXCHANGE_CIPHER_CLIENT, KEY_EXCHANGE_DH):
            w.bytes32(self.public_key)
        elif self.mode == KEY_EXCHANGE_CIPHER_HDL:
            w.utf8(self.exchange_key_handle).u32(self.exchange_key_index)

    @classmethod
    def _read(cls, r: Reader) -> SessionSetupRequest:
        mode = r.u16("mode")
        timeout = r.u32("timeout")
        identity = r.utf8("identity_handle")
        index = r.i32("identity_index")
        key, key_handle, key_index = b"", "", 0
        if mode in (KEY_EXCHANGE_CIPHER_CLIENT, KEY_EXCHANGE_DH):
            key = r.bytes32("public_key")
        elif mode == KEY_EXCHANGE_CIPHER_HDL:
            key_handle = r.utf8("exchange_key_handle")
            key_index = r.i32("exchange_key_index")
        return cls(mode, timeout, identity, index, key, key_handle, key_index)


@dataclass(frozen=True, slots=True)
class SessionSetupResponse(_Body):
    """Mode (2 bytes) and mode-specific data (e.g. the encrypted session key)."""

    mode: int
    data: bytes = b""

    _lenient_tail: ClassVar[bool] = True  # same 2-byte sizing slip as the request

    def _write(self, w: Writer) -> None:
        w.u16(self.mode).bytes32(self.data)

    @classmethod
    def _read(cls, r: Reader) -> SessionSetupResponse:
        mode = r.u16("mode")
        return cls(mode, r.bytes32("data"))


@dataclass(frozen=True, slots=True)
class SessionTerminateRequest(_Body):
    """Opcode 401; HSJ sends a handle like GetSiteInfo, RFC none."""

    handle: str | None = None

    def _write(self, w: Writer) -> None:
        if self.handle is not None:
            w.utf8(self.handle)

    @classmethod
    def _read(cls, r: Reader) -> SessionTerminateRequest:
        return cls(_read_optional_handle(r, "handle"))


@dataclass(frozen=True, slots=True)
class SessionExchangeKeyRequest(_Body):
    """Opcode 402: an encrypted session key, or an empty body."""

    key: bytes | None = None

    def _write(self, w: Writer) -> None:
        if self.key is not None:
            w.bytes32(self.key)

    @classmethod
    def _read(cls, r: Reader) -> SessionExchangeKeyRequest:
        return cls(r.bytes32("key") if r.remaining else None)


# --------------------------------------------------------------------------- generic


@dataclass(frozen=True, slots=True)
class ErrorResponse(_Body):
    """Any failure code: a UTF-8 message, then (RFC 3652) an optional list of the value
    indexes at fault. HSJ writes only the message and ignores the list, so the list is written
    only when non-empty. Invalid UTF-8 in the message is replaced rather than rejected: an
    error should stay readable even from a sloppy peer.
    """

    message: str = ""
    indexes: tuple[int, ...] = ()

    def _write(self, w: Writer) -> None:
        w.utf8(self.message)
        if self.indexes:
            _write_ints(w, self.indexes)

    @classmethod
    def _read(cls, r: Reader) -> ErrorResponse:
        if not r.remaining:  # 2.0 servers may send nothing
            return cls()
        message = r.bytes32("message").decode("utf-8", "replace")
        indexes = _read_ints(r, "indexes") if r.remaining else ()
        return cls(message, indexes)


@dataclass(frozen=True, slots=True)
class EmptyResponse(_Body):
    """A success with no body (delete, add/remove/modify value, home/unhome, ...)."""

    def _write(self, w: Writer) -> None:
        pass

    @classmethod
    def _read(cls, r: Reader) -> EmptyResponse:
        return cls()


@dataclass(frozen=True, slots=True)
class RawBody(_Body):
    """The undecoded body of an opcode this node does not know (e.g. HSJ replication 1000+),
    so the service can still answer OPERATION_NOT_SUPPORTED to the right request."""

    data: bytes = b""

    def _write(self, w: Writer) -> None:
        w.raw(self.data)

    @classmethod
    def _read(cls, r: Reader) -> RawBody:
        return cls(r.rest())


# --------------------------------------------------------------------------- replication
# Layouts of HSJ's ``Encoder`` for the replication requests (docs/replication.md); the signed
# stream that follows a 1001/1002 answer is ``wire.replication``.

_I64 = struct.Struct(">q")
_PLACE = struct.Struct(">ii")  # Java ints: the receiver's server count and index


def _read_i64(r: Reader, field: str) -> int:
    return _I64.unpack(r.raw(8, field))[0]


@dataclass(frozen=True, slots=True)
class NextTxnIdRequest(_Body):
    """OC_GET_NEXT_TXN_ID (1000): no body."""

    def _write(self, w: Writer) -> None:
        pass

    @classmethod
    def _read(cls, r: Reader) -> NextTxnIdRequest:
        return cls()


@dataclass(frozen=True, slots=True)
class NextTxnIdResponse(_Body):
    """The id the server's next transaction will get (HSJ ``NextTxnIdResponse``: one long)."""

    next_txn_id: int

    def _write(self, w: Writer) -> None:
        w.raw(_I64.pack(self.next_txn_id))

    @classmethod
    def _read(cls, r: Reader) -> NextTxnIdResponse:
        return cls(_read_i64(r, "next_txn_id"))


@dataclass(frozen=True, slots=True)
class RetrieveTxnRequest(_Body):
    """OC_RETRIEVE_TXN_LOG (1001), HSJ ``RetrieveTxnRequest`` pulling one source.

    Since protocol 2.9 HSJ writes a leading byte (0: one source, 1: a JSON replication state
    of several sources, which we refuse); before it the body starts at ``last_txn_id``. The
    two are told apart by length (25 or 26 bytes), so any version decodes."""

    last_txn_id: int
    last_query_date: int  # milliseconds since the epoch
    hash_type: int = 0  # the receiver's HS_SITE hash option and its place in its site
    num_servers: int = 1
    server_num: int = 0
    flagged: bool = True  # write the 2.9 leading byte

    def _write(self, w: Writer) -> None:
        if self.flagged:
            w.u8(0)
        w.raw(_I64.pack(self.last_txn_id) + _I64.pack(self.last_query_date))
        w.u8(self.hash_type).raw(_PLACE.pack(self.num_servers, self.server_num))

    @classmethod
    def _read(cls, r: Reader) -> RetrieveTxnRequest:
        flagged = r.remaining != 25
        if flagged and r.u8("pull_all_sources") != 0:
            raise MalformedMessage(
                "retrieving the transactions of several sources is not supported",
                field="pull_all_sources",
            )
        last, date = _read_i64(r, "last_txn_id"), _read_i64(r, "last_query_date")
        hash_type = r.u8("hash_type")
        return cls(last, date, hash_type, r.i32("num_servers"), r.i32("server_num"), flagged)


@dataclass(frozen=True, slots=True)
class RetrieveTxnResponse(_Body):
    """The answer to 1001 before its stream: one flags byte (bit 0: keep-alive)."""

    keep_alive: bool = False
    _lenient_tail: ClassVar[bool] = True

    def _write(self, w: Writer) -> None:
        w.u8(1 if self.keep_alive else 0)

    @classmethod
    def _read(cls, r: Reader) -> RetrieveTxnResponse:
        return cls(bool(r.u8("flags") & 1) if r.remaining else False)


@dataclass(frozen=True, slots=True)
class DumpHandlesRequest(_Body):
    """OC_DUMP_HANDLES (1002), HSJ ``DumpHandlesRequest``: the receiver's hash option and
    place, and optionally where to resume (a handle or prefix and its kind)."""

    hash_type: int = 0
    num_servers: int = 1
    server_num: int = 0
    starting_point: bytes | None = None
    starting_point_type: int = 0

    def _write(self, w: Writer) -> None:
        w.u8(self.hash_type).raw(_PLACE.pack(self.num_servers, self.server_num))
        if self.starting_point is not None:
            w.bytes32(self.starting_point).raw(_PLACE.pack(self.starting_point_type, 0)[:4])

    @classmethod
    def _read(cls, r: Reader) -> DumpHandlesRequest:
        hash_type, num, idx = r.u8("hash_type"), r.i32("num_servers"), r.i32("server_num")
        if not r.remaining:
            return cls(hash_type, num, idx)
        return cls(hash_type, num, idx, r.bytes32("starting_point"), r.i32("starting_point_type"))


@dataclass(frozen=True, slots=True)
class RetrieveGovernanceRequest(_Body):
    """OC_RETRIEVE_GOVERNANCE (1100), an idnode extension (no HSJ class): the governance rows
    changed after ``last_change`` (``(epoch << 40) | change id``, 0 for a full copy). One
    long, as ``NextTxnIdResponse``; the answer is an empty body and then a signed stream
    (``wire.replication``, format 3)."""

    last_change: int = 0

    def _write(self, w: Writer) -> None:
        w.raw(_I64.pack(self.last_change))

    @classmethod
    def _read(cls, r: Reader) -> RetrieveGovernanceRequest:
        return cls(_read_i64(r, "last_change"))


Body = (
    ResolutionRequest
    | ResolutionResponse
    | GetSiteInfoRequest
    | SiteInfoResponse
    | ServiceReferralResponse
    | CreateHandleRequest
    | CreateHandleResponse
    | DeleteHandleRequest
    | AddValueRequest
    | RemoveValueRequest
    | ModifyValueRequest
    | ListHandlesRequest
    | ListHandlesResponse
    | ListNAsRequest
    | ListNAsResponse
    | HomeNARequest
    | UnhomeNARequest
    | ChallengeResponse
    | ChallengeAnswerRequest
    | VerifyResponseRequest
    | VerifyResponseResponse
    | LoginIdSystemRequest
    | SessionSetupRequest
    | SessionSetupResponse
    | SessionTerminateRequest
    | SessionExchangeKeyRequest
    | NextTxnIdRequest
    | NextTxnIdResponse
    | RetrieveTxnRequest
    | RetrieveTxnResponse
    | DumpHandlesRequest
    | RetrieveGovernanceRequest
    | ErrorResponse
    | EmptyResponse
    | RawBody
)

# --------------------------------------------------------------------------- dispatch

REQUEST_BODIES: dict[int, type[_Body]] = {
    OpCode.RESOLUTION: ResolutionRequest,
    OpCode.GET_SITEINFO: GetSiteInfoRequest,
    OpCode.CREATE_HANDLE: CreateHandleRequest,
    OpCode.DELETE_HANDLE: DeleteHandleRequest,
    OpCode.ADD_VALUE: AddValueRequest,
    OpCode.REMOVE_VALUE: RemoveValueRequest,
    OpCode.MODIFY_VALUE: ModifyValueRequest,
    OpCode.LIST_HANDLES: ListHandlesRequest,
    OpCode.LIST_NAS: ListNAsRequest,
    OP_LIST_HOMED_NAS: ListNAsRequest,
    OpCode.CHALLENGE_RESPONSE: ChallengeAnswerRequest,
    OpCode.VERIFY_RESPONSE: VerifyResponseRequest,
    OpCode.HOME_NA: HomeNARequest,
    OpCode.UNHOME_NA: UnhomeNARequest,
    OpCode.SESSION_SETUP: SessionSetupRequest,
    OpCode.SESSION_TERMINATE: SessionTerminateRequest,
    OpCode.SESSION_EXCHANGEKEY: SessionExchangeKeyRequest,
    OpCode.LOGIN_ID_SYSTEM: LoginIdSystemRequest,
    OpCode.GET_NEXT_TXN_ID: NextTxnIdRequest,
    OpCode.RETRIEVE_TXN_LOG: RetrieveTxnRequest,
    OpCode.DUMP_HANDLES: DumpHandlesRequest,
    OpCode.RETRIEVE_GOVERNANCE: RetrieveGovernanceRequest,
}

SUCCESS_BODIES: dict[int, type[_Body]] = {
    OpCode.RESOLUTION: ResolutionResponse,
    OpCode.GET_SITEINFO: SiteInfoResponse,
    OpCode.CREATE_HANDLE: CreateHandleResponse,
    OpCode.LIST_HANDLES: ListHandlesResponse,
    OpCode.LIST_NAS: ListNAsResponse,
    OP_LIST_HOMED_NAS: ListNAsResponse,
    OpCode.VERIFY_RESPONSE: VerifyResponseResponse,
    OpCode.SESSION_SETUP: SessionSetupResponse,
    OpCode.GET_NEXT_TXN_ID: NextTxnIdResponse,
    OpCode.RETRIEVE_TXN_LOG: RetrieveTxnResponse,
}


def body_type(opcode: int, response_code: int) -> type[_Body]:
    """The body class a message with this (opcode, response code) carries."""
    if response_code == ResponseCode.RESERVED:
        return REQUEST_BODIES.get(opcode, RawBody)
    if response_code == ResponseCode.SUCCESS:
        if opcode in SUCCESS_BODIES:
            return SUCCESS_BODIES[opcode]
        return EmptyResponse if opcode in REQUEST_BODIES else RawBody
    if response_code in (ResponseCode.SERVICE_REFERRAL, ResponseCode.PREFIX_REFERRAL):
        return ServiceReferralResponse
    if response_code == ResponseCode.AUTHENTICATION_NEEDED:
        return ChallengeResponse
    return ErrorResponse


def decode_body(
    opcode: int, response_code: int, data: bytes, digest: RequestDigest | None = None
) -> Body:
    """Decode the body bytes (after any request digest) of a message.

    ``digest`` is the request digest read before the body; only a challenge uses it. Raises
    ``MalformedMessage`` for anything that does not parse or leaves unexpected bytes.
    """
    cls = body_type(opcode, response_code)
    r = Reader(data)
    if cls is ChallengeResponse:
        body: _Body = ChallengeResponse._read_with(r, digest)
    else:
        body = cls._read(r)
    if not cls._lenient_tail:
        r.expect_end("body")
    return body  # type: ignore[return-value]


def encode_body(body: Body) -> bytes:
    """The body bytes (without any request digest; see ``ChallengeResponse``)."""
    w = Writer()
    body._write(w)
    return w.getvalue()
