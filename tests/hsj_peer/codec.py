"""Byte layouts of Handle messages, each after the RFC 3652 section named beside it.

A message is ``envelope (20 bytes) || header (24 bytes) || body || credential``; the
envelope's MessageLength counts everything after it and the header's BodyLength the body.
Requests here carry an empty credential section (a 4-byte length of 0, §2.2.4).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# RFC 3652 §2.2.2.1 (opcodes) and §2.2.2.2 (response codes)
OC_RESOLUTION = 1
OC_GET_SITE_INFO = 2
OC_CREATE_HANDLE = 100
OC_LIST_HANDLES = 105
OC_CHALLENGE_RESPONSE = 200
OC_SESSION_TERMINATE = 401

RC_SUCCESS = 1
RC_PROTOCOL_ERROR = 4
RC_OPERATION_NOT_SUPPORTED = 5
RC_HANDLE_NOT_FOUND = 100
RC_AUTHENTICATION_NEEDED = 402

# RFC 3652 §2.2.2.3 (OpFlag bits, from the most significant)
FLAG_CN = 0x04000000  # continuous: more messages of this answer follow
FLAG_PO = 0x01000000  # public only
FLAG_RD = 0x00800000  # request digest in the answer

ENVELOPE_SIZE = 20
HEADER_SIZE = 24
HDL_MIME_TYPE = "application/x-hdl-message"  # HANDLE.NET's HDL-over-HTTP content type

_ENVELOPE = struct.Struct(">BBHIIII")  # §2.2.1: major, minor, flags, session, request, seq, len
_HEADER = struct.Struct(">IIIHBBII")  # §2.2.2: opcode, code, flags, serial, rec, 0, exp, len


def utf8(text: str) -> bytes:
    """UTF8-String (§2.1.4): a 4-byte length, then the UTF-8 bytes."""
    data = text.encode("utf-8")
    return struct.pack(">I", len(data)) + data


def request(
    opcode: int,
    body: bytes,
    *,
    request_id: int,
    flags: int = 0,
    session_id: int = 0,
    version: tuple[int, int] = (2, 1),
) -> bytes:
    """Envelope + header + body + an empty credential: one whole request."""
    header = _HEADER.pack(opcode, 0, flags, 0, 0, 0, 0, len(body))
    message = header + body + b"\0\0\0\0"
    envelope = _ENVELOPE.pack(version[0], version[1], 0, session_id, request_id, 0, len(message))
    return envelope + message


def resolution(
    handle: str, *, request_id: int, flags: int = FLAG_PO, indexes: tuple[int, ...] = ()
) -> bytes:
    """§3.1: handle, an index list (a 4-byte count, then 4-byte indexes), no types."""
    index_list = struct.pack(f">I{len(indexes)}I", len(indexes), *indexes)
    body = utf8(handle) + index_list + b"\0\0\0\0"
    return request(OC_RESOLUTION, body, request_id=request_id, flags=flags)


def get_site_info(*, request_id: int) -> bytes:
    """§3.2: no body."""
    return request(OC_GET_SITE_INFO, b"", request_id=request_id)


def create_handle(handle: str, url: str, *, request_id: int) -> bytes:
    """§3.7.1: the handle and one URL value (RFC 3651 §3.1 value layout, §4 of 3652)."""
    return request(OC_CREATE_HANDLE, create_body(handle, url), request_id=request_id)


def create_body(handle: str, url: str) -> bytes:
    """The body of ``create_handle``."""
    value = (
        struct.pack(">IIBIB", 1, 0, 0, 86400, 0x0E)  # index, timestamp, ttl type, ttl, perms
        + utf8("URL")
        + utf8(url)  # data: a 4-byte length and the bytes
        + b"\0\0\0\0"  # no references
    )
    return utf8(handle) + struct.pack(">I", 1) + value


def list_handles(prefix_handle: str, *, request_id: int) -> bytes:
    """§3.7.6 (HSJ's ListHandlesRequest): the prefix handle."""
    return request(OC_LIST_HANDLES, utf8(prefix_handle), request_id=request_id)


def session_terminate(session_id: int, *, request_id: int) -> bytes:
    """§3.8: no body; the session id in the envelope."""
    return request(OC_SESSION_TERMINATE, b"", request_id=request_id, session_id=session_id)


def challenge_answer(
    key_handle: str, key_index: int, answer: bytes, *, request_id: int, session_id: int
) -> bytes:
    """§3.5.2: authentication type, key handle, key index, the answer (a 4-byte length and
    bytes); the envelope carries the challenge's session id."""
    body = utf8("HS_PUBKEY") + utf8(key_handle) + struct.pack(">I", key_index)
    body += struct.pack(">I", len(answer)) + answer
    return request(OC_CHALLENGE_RESPONSE, body, request_id=request_id, session_id=session_id)


def malformed(*, request_id: int) -> bytes:
    """A resolution whose handle length runs past the body: a protocol error (§2.2)."""
    body = b"\xff\xff\xff\x00" + b"20.500/x" + b"\0" * 8
    return request(OC_RESOLUTION, body, request_id=request_id)


@dataclass(frozen=True)
class Reply:
    """One answer: the envelope and header fields a client looks at, and the body bytes."""

    request_id: int
    session_id: int
    message_length: int
    opcode: int
    code: int
    flags: int
    site_serial: int
    expiration: int
    body: bytes

    @property
    def error_text(self) -> str:
        """The ErrorMessage of an error answer (§3.3), after a request digest if RD is set."""
        offset = self._digest_size()
        (length,) = struct.unpack_from(">I", self.body, offset)
        return self.body[offset + 4 : offset + 4 + length].decode("utf-8", "replace")

    @property
    def nonce(self) -> bytes:
        """A challenge's nonce (§3.5.1: the request digest, then the nonce)."""
        offset = self._digest_size()
        (length,) = struct.unpack_from(">I", self.body, offset)
        return self.body[offset + 4 : offset + 4 + length]

    @property
    def digest(self) -> bytes:
        """The request digest a challenge carries, without its algorithm octet."""
        return self.body[1 : self._digest_size()]

    @property
    def handles(self) -> list[str]:
        """The handles of a list-handles answer (§3.7.6: a 4-byte count, then strings)."""
        (count,) = struct.unpack_from(">I", self.body, 0)
        out, offset = [], 4
        for _ in range(count):
            (length,) = struct.unpack_from(">I", self.body, offset)
            out.append(self.body[offset + 4 : offset + 4 + length].decode("utf-8"))
            offset += 4 + length
        return out

    def _digest_size(self) -> int:
        """The request digest before the body (§2.2.2.3 RD): an algorithm octet + digest."""
        if not self.flags & FLAG_RD and self.code != RC_AUTHENTICATION_NEEDED:
            return 0
        return 1 + {1: 16, 2: 20, 3: 32}[self.body[0]]  # MD5, SHA-1, SHA-256


def envelope_length(data: bytes) -> int:
    """The MessageLength of an envelope: how many bytes follow it."""
    return _ENVELOPE.unpack_from(data)[6]


def parse(data: bytes) -> Reply:
    """One whole answer: envelope + message (as a datagram, a TCP frame or an HTTP part)."""
    _, _, _, session_id, request_id, _, length = _ENVELOPE.unpack_from(data)
    if len(data) != ENVELOPE_SIZE + length:
        raise ValueError(f"envelope announces {length} bytes, {len(data) - ENVELOPE_SIZE} follow")
    opcode, code, flags, serial, _, _, expiration, body_length = _HEADER.unpack_from(
        data, ENVELOPE_SIZE
    )
    start = ENVELOPE_SIZE + HEADER_SIZE
    return Reply(
        request_id,
        session_id,
        length,
        opcode,
        code,
        flags,
        serial,
        expiration,
        data[start : start + body_length],
    )
