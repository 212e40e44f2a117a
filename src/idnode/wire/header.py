"""The 24-byte message header (RFC 3652 section 2.2.2).

Every message, request or response, starts with it::

    OpCode              4 bytes
    ResponseCode        4 bytes (0 in every request)
    OpFlag              4 bytes (``idnode.codes.OpFlag``)
    SiteInfoSerial      2 bytes
    RecursionCount      1 byte
    (reserved)          1 byte, written 0, ignored on read
    ExpirationTime      4 bytes (seconds since the epoch)
    BodyLength          4 bytes
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.errors import MalformedMessage

HEADER_SIZE = 24
MAX_RECURSION_COUNT = 10  # hops a request may have been forwarded; above: code 6 (HSJ's limit)

_HDR = struct.Struct(">IIIHBBII")


def _enum(cls: type, value: int) -> int:
    """The enum member when the number is known (nicer reprs and logs), else the int."""
    try:
        return cls(value)
    except ValueError:
        return value


@dataclass(frozen=True, slots=True)
class Header:
    opcode: int
    response_code: int = 0
    flags: OpFlag = OpFlag(0)
    site_serial: int = 0
    recursion_count: int = 0
    expiration: int = 0
    body_length: int = 0

    @property
    def is_response(self) -> bool:
        return self.response_code != 0

    def has(self, flag: OpFlag) -> bool:
        return bool(self.flags & flag)


def decode_header(data: bytes, offset: int = 0) -> Header:
    if len(data) - offset < HEADER_SIZE:
        raise MalformedMessage(
            f"needs {HEADER_SIZE} bytes but only {max(len(data) - offset, 0)} remain",
            field="header",
        )
    opcode, code, flags, serial, recursion, _reserved, expiration, body_len = _HDR.unpack_from(
        data, offset
    )
    return Header(
        opcode=_enum(OpCode, opcode),
        response_code=_enum(ResponseCode, code),
        flags=OpFlag(flags),
        site_serial=serial,
        recursion_count=recursion,
        expiration=expiration,
        body_length=body_len,
    )


def encode_header(h: Header) -> bytes:
    """The 24 header bytes. Raises ``ValueError`` for fields that do not fit."""
    try:
        return _HDR.pack(
            int(h.opcode),
            int(h.response_code),
            int(h.flags) & 0xFFFFFFFF,
            h.site_serial,
            h.recursion_count,
            0,
            h.expiration & 0xFFFFFFFF,
            h.body_length,
        )
    except struct.error as exc:
        raise ValueError(f"header field out of range: {exc}") from None
