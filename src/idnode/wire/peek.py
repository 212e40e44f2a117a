"""Named reads of raw message bytes, for the hot paths that must not decode a message.

The UDP fast path, the response cache and the load generator decide from four bytes at a
known place whether a cached answer fits, whose answer a datagram is, or where a frame ends.
Those places are the wire format's business: they live here, beside the layouts they come
from (``envelope.py``: RFC 3652 section 2.2.1; ``header.py``: section 2.2.2), so no module
outside ``wire`` spells a byte offset.

Every function takes bytes that are long enough (callers check ``len`` against
``ENVELOPE_SIZE`` / ``HEADER_SIZE`` first, as a decoder would); none allocates more than the
integer or slice it returns.
"""

from __future__ import annotations

from idnode.codes import OpCode
from idnode.wire.envelope import ENVELOPE_SIZE, FLAG_TRUNCATED
from idnode.wire.header import HEADER_SIZE

__all__ = ["ENVELOPE_SIZE", "HEADER_SIZE"]

_RESOLUTION = int(OpCode.RESOLUTION).to_bytes(4, "big")
_ZERO32 = bytes(4)


# -- the envelope: the first ENVELOPE_SIZE bytes of every datagram or TCP frame ---------------
def envelope_flags(message: bytes) -> int:
    """Byte 2: compressed / encrypted / truncated flags and the suggested major version."""
    return message[2]


def is_truncated(message: bytes) -> bool:
    return bool(message[2] & FLAG_TRUNCATED)


def version_pair(message: bytes) -> bytes:
    """Bytes 0-1: major and minor version, as sent."""
    return message[0:2]


def suggested_minor(message: bytes) -> int:
    return message[3]


def session_id_bytes(message: bytes) -> bytes:
    return message[4:8]


def request_id_bytes(message: bytes) -> bytes:
    return message[8:12]


def request_id(message: bytes) -> int:
    return int.from_bytes(message[8:12], "big")


def sequence_bytes(message: bytes) -> bytes:
    return message[12:16]


def message_length(message: bytes) -> int:
    """Bytes 16-19: the length of what follows the envelope (header + body + credential)."""
    return int.from_bytes(message[16:20], "big")


def is_single_plain_request(datagram: bytes) -> bool:
    """One whole message in one datagram, with no session: what a cached answer may serve
    (the flags of compression and encryption are the caller's to check)."""
    return (
        session_id_bytes(datagram) == _ZERO32
        and sequence_bytes(datagram) == _ZERO32
        and message_length(datagram) == len(datagram) - ENVELOPE_SIZE
    )


def split(message: bytes) -> tuple[bytes, bytes]:
    """(envelope, the rest)."""
    return message[:ENVELOPE_SIZE], message[ENVELOPE_SIZE:]


# -- the header: the first HEADER_SIZE bytes after the envelope --------------------------------
def opcode(payload: bytes) -> int:
    """The operation code, or -1 when the payload is too short to hold one."""
    return int.from_bytes(payload[0:4], "big") if len(payload) >= 4 else -1


def is_resolution(payload: bytes) -> bool:
    return payload[0:4] == _RESOLUTION


def op_flags(payload: bytes) -> int:
    return int.from_bytes(payload[8:12], "big")


def body_length(payload: bytes) -> int:
    return int.from_bytes(payload[20:24], "big")


def without_body(header: bytes) -> bytes:
    """``header`` with its body length set to 0 (an answer cut to "ask again over TCP")."""
    return bytes(header[:20]) + _ZERO32 + bytes(header[24:HEADER_SIZE])


def has_credential(payload: bytes) -> bool:
    """Whether a signed credential follows the body (an empty one is 4 zero bytes)."""
    rest = len(payload) - HEADER_SIZE - body_length(payload)
    return not (rest == 0 or (rest == 4 and payload[-4:] == _ZERO32))


# -- the body of a resolution request: it starts with the handle (RFC 3652 section 3.1) -------
def resolution_handle(payload: bytes) -> str:
    """The handle a resolution request names; "" if the payload is too short to hold it."""
    start = HEADER_SIZE + 4
    if len(payload) < start:
        return ""
    length = int.from_bytes(payload[HEADER_SIZE:start], "big")
    return payload[start : start + length].decode("utf-8", "replace")
