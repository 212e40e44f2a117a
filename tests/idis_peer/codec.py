"""Byte layouts of the IDIS SDK's messages, each written after the SDK method named beside it.

Requests come out as the SDK puts them on a TCP connection: a 20-byte envelope
(``Encoder.encodeEnvelope``), the 24-byte header (``Encoder.writeHeader``), the body, and for
every request but the 2001 login a 4-byte credential length of 0
(``AbstractMessage.getEncodedMessage``; ``MessagePacketsManager`` sends the login as
``MsgConverter.convertLoginIDSystemReqToBytes`` made it, without that field).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

# core/AbstractMessage.java
OC_RESOLUTION = 1
OC_GET_SITE_INFO = 2
OC_CREATE_HANDLE = 100
OC_DELETE_HANDLE = 101
OC_RESPONSE_TO_CHALLENGE = 200
OC_SESSION_SETUP = 400
OC_LOGIN_ID_SYSTEM = 2001

RC_SUCCESS = 1
RC_AUTHENTICATION_NEEDED = 402
# every code Encoder.decodeMessage accepts; anything else makes the SDK throw
# "Unknown responseCode"
SDK_KNOWN_CODES = frozenset(
    {1, 2, 3, 4, 5, 6, 7, 100, 101, 102, 200, 201, 202, 300, 301, 302, 303}
    | {400, 401, 402, 403, 404, 405, 406, 500, 501, 502, 503, 504, 505}
    | {601, 602, 603, 604, 605}
)

# core/Encoder.java MSG_FLAG_*
FLAG_CERT = 0x40000000
FLAG_ENCR = 0x20000000
FLAG_RECU = 0x10000000
FLAG_CACR = 0x08000000
FLAG_CONT = 0x04000000
FLAG_PUBL = 0x01000000
FLAG_RRDG = 0x00800000
FLAG_RECU_AUTH = 0x00000004  # "transfer user auth info to referred server"
DEFAULT_FLAGS = FLAG_CACR | FLAG_PUBL | FLAG_RECU  # AbstractMessage field defaults

ENV_FLAG_ENCRYPTED = 0x40
# MessageEnvelope defaults: speak 2.10 (COMPATIBILITY_*), suggest 2.11 (MAJOR/MINOR_VERSION)
VERSION, SUGGEST = (2, 10), (2, 11)

# core/Common.java
HASH_CODE_MD5, HASH_CODE_SHA1, HASH_CODE_SHA256 = 1, 2, 3
DIGEST_SIZES = {HASH_CODE_MD5: 16, HASH_CODE_SHA1: 20, HASH_CODE_SHA256: 32}
PUBLIC_KEY_TYPE = b"HS_PUBKEY"

# Encoder PERM_* (value permissions) and the HS_ADMIN permission bits
PERM_ADMIN_READ, PERM_ADMIN_WRITE, PERM_PUBLIC_READ, PERM_PUBLIC_WRITE = 0x8, 0x4, 0x2, 0x1
ADMIN_ALL = 0x0FFF


def u32(n: int) -> bytes:
    return struct.pack(">I", n & 0xFFFFFFFF)


def b32(data: bytes) -> bytes:
    """``Encoder.writeByteArray``: 4-byte length, then the bytes (null writes length 0)."""
    return u32(len(data)) + data


def int_array(items: tuple[int, ...] | None) -> bytes:
    """``Encoder.writeIntArray`` (null: a count of 0)."""
    items = items or ()
    return u32(len(items)) + b"".join(u32(i) for i in items)


def byte_array_array(items: tuple[bytes, ...] | None) -> bytes:
    """``Encoder.writeByteArrayArray`` (null: a count of 0)."""
    items = items or ()
    return u32(len(items)) + b"".join(b32(i) for i in items)


@dataclass(frozen=True)
class Value:
    """``core/HandleValue.java``, encoded by ``Encoder.encodeHandleValue``."""

    index: int
    type: bytes
    data: bytes
    perms: int = PERM_ADMIN_READ | PERM_ADMIN_WRITE | PERM_PUBLIC_READ
    ttl_type: int = 0
    ttl: int = 86400
    timestamp: int = 0

    def encode(self) -> bytes:
        return (
            struct.pack(">IIBIB", self.index, self.timestamp, self.ttl_type, self.ttl, self.perms)
            + b32(self.type)
            + b32(self.data)
            + u32(0)  # no references
        )


def admin_record(handle: str, index: int, perms: int = ADMIN_ALL) -> bytes:
    """``Encoder.encodeAdminRecord``: 2-byte permissions, admin handle, admin index."""
    return struct.pack(">H", perms) + b32(handle.encode()) + u32(index)


def decode_value(buf: bytes, at: int) -> tuple[Value, int]:
    """``Encoder.decodeHandleValue``; returns the value and the offset after it."""
    index, timestamp, ttl_type, ttl, perms = struct.unpack_from(">IIBIB", buf, at)
    at += 14
    vtype, at = read_b32(buf, at)
    data, at = read_b32(buf, at)
    (nrefs,) = struct.unpack_from(">I", buf, at)
    at += 4
    for _ in range(nrefs):
        _, at = read_b32(buf, at)
        at += 4
    return Value(index, vtype, data, perms, ttl_type, ttl, timestamp), at


def read_b32(buf: bytes, at: int) -> tuple[bytes, int]:
    (n,) = struct.unpack_from(">I", buf, at)
    if at + 4 + n > len(buf):
        raise ValueError(f"length {n} at {at} runs past the message")
    return buf[at + 4 : at + 4 + n], at + 4 + n


# -------------------------------------------------------------------------- requests


@dataclass
class Request:
    """An SDK request: header fields as ``Encoder.writeHeader`` writes them, and its body."""

    opcode: int
    body: bytes
    flags: int = DEFAULT_FLAGS
    session_id: int = 0
    request_id: int = 1
    expiration: int = 0
    credential_field: bool = True  # False only for the 2001 login (MsgConverter)
    site_serial: int = 0xFFFF  # siteInfoSerial = -1, written as two bytes

    def header_body(self) -> bytes:
        """``getEncodedMessageBody``: what the SDK digests to check a challenge."""
        header = struct.pack(
            ">IIIHBBII",
            self.opcode,
            0,
            self.flags,
            self.site_serial,
            0,  # recursionCount
            0,  # reserved
            self.expiration,
            len(self.body),
        )
        return header + self.body

    def encode(self, encrypt=None) -> bytes:
        """Envelope + message, as ``MessagePacketsManager.getTcpMessageEnvelopeForRequest``
        sends it (one packet); ``encrypt(bytes) -> bytes`` seals the message when given."""
        message = self.header_body() + (u32(0) if self.credential_field else b"")
        flags = SUGGEST[0]
        if encrypt is not None:
            message = encrypt(message)
            flags |= ENV_FLAG_ENCRYPTED
        envelope = struct.pack(
            ">BBBBIIII",
            VERSION[0],
            VERSION[1],
            flags,
            SUGGEST[1],
            self.session_id,
            self.request_id,
            0,  # messageId (packet number)
            len(message),
        )
        return envelope + message


def resolution_body(
    handle: str,
    types: tuple[str, ...] = (),
    indexes: tuple[int, ...] = (),
    auth_string: str | None = None,
) -> bytes:
    """``Encoder.encodeResolutionRequest``: the trailing ``authBytes`` field is always there,
    empty unless ``resolveHandle(handle, types, indexes, authString)`` was called."""
    auth = auth_string.encode() if auth_string is not None else b""
    return (
        b32(handle.encode())
        + int_array(indexes)
        + byte_array_array(tuple(t.encode() for t in types))
        + b32(auth)
    )


def generic_body(handle: str = "/") -> bytes:
    """``Encoder.encodeGenericRequest`` (get-siteinfo sends the handle "/")."""
    return b32(handle.encode())


def login_body(handle: str, index: int) -> bytes:
    """``MsgConverter.convertLoginIDSystemReqToBytes``: the user's handle, then its index."""
    return b32(handle.encode()) + u32(index)


def challenge_answer_body(auth_type: bytes, handle: str, index: int, signed: bytes) -> bytes:
    """``Encoder.encodeChallengeAnswer``."""
    return b32(auth_type) + b32(handle.encode()) + u32(index) + b32(signed)


def create_body(handle: str, values: list[Value]) -> bytes:
    """``Encoder.encodeCreateHandleRequest``."""
    return b32(handle.encode()) + u32(len(values)) + b"".join(v.encode() for v in values)


def delete_body(handle: str) -> bytes:
    """``Encoder.encodeDeleteHandleRequest``."""
    return b32(handle.encode())


DEFAULT_SESSION_TIMEOUT = 24 * 60 * 60  # Common.DEFAULT_SESSION_TIMEOUT


def session_setup_cipher_hdl_body(key_handle: str, key_index: int) -> bytes:
    """``Encoder.encodeSessionSetupRequest`` for ``KEY_EXCHANGE_CIPHER_HDL`` (mode 3), as
    ``TransportEncryptHandler`` builds it with ``new SessionSetupIdRequest(userIdHandle,
    userIdIndex)``: that constructor fills the *exchange key* fields, so the identity is a
    null handle (length 0) and index -1. A 2-byte mode, though the SDK sizes it as 4."""
    return (
        struct.pack(">H", 3)
        + u32(DEFAULT_SESSION_TIMEOUT)
        + b32(b"")
        + u32(0xFFFFFFFF)
        + b32(key_handle.encode())
        + u32(key_index)
    )


def decode_session_setup_response(body: bytes) -> tuple[int, bytes]:
    """``Encoder.decodeSetupSessionResponse``: a 2-byte mode, then the data."""
    (mode,) = struct.unpack_from(">H", body, 0)
    data, _ = read_b32(body, 2)
    return mode, data


# -------------------------------------------------------------------------- responses


@dataclass
class Reply:
    """A response as ``Encoder.decodeMessage`` reads it (the parts the tests look at)."""

    session_id: int
    request_id: int
    encrypted: bool
    opcode: int
    code: int
    flags: int
    expiration: int
    digest_type: int = 0
    digest: bytes = b""
    raw_body: bytes = b""  # after the request digest
    message: str = ""  # error text
    nonce: bytes = b""  # challenge
    handle: str = ""  # resolution
    values: list[Value] = field(default_factory=list)


def split_envelope(data: bytes) -> tuple[dict, bytes]:
    major, minor, flags, s_minor, session, request, seq, length = struct.unpack_from(
        ">BBBBIIII", data, 0
    )
    env = {
        "version": (major, minor),
        "encrypted": bool(flags & ENV_FLAG_ENCRYPTED),
        "session_id": session,
        "request_id": request,
        "length": length,
    }
    return env, data[20 : 20 + length]


def decode_reply(env: dict, message: bytes) -> Reply:
    opcode, code, flags, _serial, _rec, _res, expiration, body_len = struct.unpack_from(
        ">IIIHBBII", message, 0
    )
    body = message[24 : 24 + body_len]
    reply = Reply(
        env["session_id"], env["request_id"], env["encrypted"], opcode, code, flags, expiration
    )
    at = 0
    if flags & FLAG_RRDG:
        reply.digest_type = body[0]
        size = DIGEST_SIZES[body[0]]
        reply.digest = body[1 : 1 + size]
        at = 1 + size
    reply.raw_body = body = body[at:]
    if code == RC_AUTHENTICATION_NEEDED:
        reply.nonce, _ = read_b32(body, 0)
    elif code == RC_SUCCESS and opcode == OC_RESOLUTION:
        handle, pos = read_b32(body, 0)
        reply.handle = handle.decode()
        (count,) = struct.unpack_from(">I", body, pos)
        pos += 4
        for _ in range(count):
            value, pos = decode_value(body, pos)
            reply.values.append(value)
    elif code != RC_SUCCESS and code not in (302, 303):
        text, _ = read_b32(body, 0)  # Encoder.decodeErrorMessage (2.1 and later)
        reply.message = text.decode("utf-8", "replace")
    return reply


def digest_of(request: Request, digest_type: int) -> bytes:
    """``Util.doDigest(rdHashType, request.getEncodedMessageBody())``."""
    name = {HASH_CODE_MD5: "md5", HASH_CODE_SHA1: "sha1", HASH_CODE_SHA256: "sha256"}
    return hashlib.new(name[digest_type], request.header_body()).digest()
