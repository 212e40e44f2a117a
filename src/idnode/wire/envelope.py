"""The 20-byte message envelope (RFC 3652 section 2.2.1) and protocol-version negotiation.

Layout, as current Handle.Net software (HSJ 2.10/2.11) writes it::

    byte 0      major version
    byte 1      minor version
    byte 2      flags: 0x80 compressed, 0x40 encrypted, 0x20 truncated,
                OR'd with the *suggested* major version in the low two bits
    byte 3      suggested minor version
    bytes 4-7   session id
    bytes 8-11  request id
    bytes 12-15 sequence number (packet number of a multi-datagram UDP message)
    bytes 16-19 message length (header + body + credential, excluding envelopes)

RFC 3652 calls bytes 2-3 a 16-bit MessageFlag and plain 2.1 senders leave the low bits zero;
like HSJ, a suggested version of 0.x is read as "same as major.minor".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from idnode.errors import MalformedMessage, ProtocolError

ENVELOPE_SIZE = 20
MAX_MESSAGE_LENGTH = 1 << 20  # 1 MiB; HSJ itself caps at 256 KiB

FLAG_COMPRESSED = 0x80
FLAG_ENCRYPTED = 0x40
FLAG_TRUNCATED = 0x20
_SUGGEST_MAJOR_MASK = 0x03  # HSJ reads only the low two bits

OUR_VERSION = (2, 11)
SUPPORTED_VERSIONS: tuple[tuple[int, int], ...] = ((2, 1), (2, 10), (2, 11))
_MIN_VERSION = SUPPORTED_VERSIONS[0]

_ENV = struct.Struct(">BBBBIIII")


@dataclass(slots=True)
class Envelope:
    """One envelope. Defaults are what we send: speak 2.1, suggest 2.11 (as HSJ does)."""

    major: int = 2
    minor: int = 1
    suggest_major: int = 2
    suggest_minor: int = 11
    compressed: bool = False
    encrypted: bool = False
    truncated: bool = False
    session_id: int = 0
    request_id: int = 0
    sequence: int = 0
    message_length: int = 0

    @property
    def version(self) -> tuple[int, int]:
        return (self.major, self.minor)

    @property
    def suggested_version(self) -> tuple[int, int]:
        return (self.suggest_major, self.suggest_minor)


def decode_envelope(data: bytes, max_message: int = MAX_MESSAGE_LENGTH) -> Envelope:
    """Decode the first 20 bytes of ``data``.

    ``message_length`` is checked against ``max_message`` here, before any caller could
    allocate or wait for that many bytes.
    """
    if len(data) < ENVELOPE_SIZE:
        raise MalformedMessage(
            f"needs {ENVELOPE_SIZE} bytes but only {len(data)} present", field="envelope"
        )
    major, minor, flags, s_minor, session, request, seq, length = _ENV.unpack_from(data, 0)
    if length > max_message:
        raise MalformedMessage(
            f"message length {length} exceeds the limit of {max_message}",
            field="envelope.message_length",
        )
    s_major = flags & _SUGGEST_MAJOR_MASK
    if s_major == 0:
        s_major, s_minor = major, minor
    return Envelope(
        major=major,
        minor=minor,
        suggest_major=s_major,
        suggest_minor=s_minor,
        compressed=bool(flags & FLAG_COMPRESSED),
        encrypted=bool(flags & FLAG_ENCRYPTED),
        truncated=bool(flags & FLAG_TRUNCATED),
        session_id=session,
        request_id=request,
        sequence=seq,
        message_length=length,
    )


def encode_envelope(env: Envelope) -> bytes:
    """The 20 envelope bytes. Raises ``ValueError`` for fields that do not fit."""
    if not 0 <= env.suggest_major <= _SUGGEST_MAJOR_MASK:
        raise ValueError(f"suggested major version {env.suggest_major} does not fit in 2 bits")
    flags = env.suggest_major
    if env.compressed:
        flags |= FLAG_COMPRESSED
    if env.encrypted:
        flags |= FLAG_ENCRYPTED
    if env.truncated:
        flags |= FLAG_TRUNCATED
    try:
        return _ENV.pack(
            env.major,
            env.minor,
            flags,
            env.suggest_minor,
            env.session_id,
            env.request_id,
            env.sequence,
            env.message_length,
        )
    except struct.error as exc:
        raise ValueError(f"envelope field out of range: {exc}") from None


def reply_version(env: Envelope) -> tuple[int, int]:
    """The version to answer a request in: the highest version both sides speak.

    The client speaks ``env.version`` and says it could also speak ``env.suggested_version``;
    we take the higher of the two, cap it at ours (2.11) and round down to a version in
    ``SUPPORTED_VERSIONS`` (never below 2.1, which every Handle client understands).
    Only major version 2 exists; anything else (including the old HSJ "5.0" mistake) is a
    ``ProtocolError``.
    """
    if env.major != 2:
        raise ProtocolError(
            f"unsupported protocol version {env.major}.{env.minor}: this node speaks "
            + ", ".join(f"{a}.{b}" for a, b in SUPPORTED_VERSIONS)
        )
    wanted = min(max(env.version, env.suggested_version), OUR_VERSION)
    best = _MIN_VERSION
    for v in SUPPORTED_VERSIONS:
        if v <= wanted:
            best = max(best, v)
    return best


def at_least(version: tuple[int, int], major: int, minor: int) -> bool:
    """HSJ's ``hasEqualOrGreaterVersion`` for major 2 (major 5 is rejected elsewhere)."""
    return version >= (major, minor)
