"""Whole messages: envelope + header + [request digest] + body + credential section.

``decode_message`` turns one reassembled payload (what follows the envelope) into a
``Message``; ``encode_message`` does the reverse. ``make_response``/``make_error`` build the
answer to a request the way HSJ does: same request id, session id and opcode, answered in
the negotiated version, with the request digest when the client asked for it (RD flag).

Payload layout::

    Header              24 bytes (BodyLength covers digest + body)
    [RequestDigest]     responses with the RD flag only: 1 id byte + digest (see bodies)
    Body                BodyLength bytes minus the digest
    CredentialLength    4 bytes, then the credential (see credential.py)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import Any

from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.encoding import Reader, Writer
from idnode.errors import MalformedMessage, ProtocolError
from idnode.wire.bodies import (
    Body,
    ChallengeResponse,
    ErrorResponse,
    RawBody,
    RequestDigest,
    body_type,
    decode_body,
    digest_algorithm_for,
    digest_request,
    encode_body,
    read_request_digest,
    write_request_digest,
)
from idnode.wire.credential import Credential, read_credential_section, write_credential_section
from idnode.wire.envelope import (
    ENVELOPE_SIZE,
    MAX_MESSAGE_LENGTH,
    OUR_VERSION,
    SUPPORTED_VERSIONS,
    Envelope,
    decode_envelope,
    encode_envelope,
    reply_version,
)
from idnode.wire.header import HEADER_SIZE, Header, decode_header, encode_header

# Request flags a response carries back (HSJ ``takeValuesFrom``); RD is set from the digest.
ECHOED_FLAGS = OpFlag.AT | OpFlag.CT | OpFlag.ENC | OpFlag.REC | OpFlag.CA | OpFlag.PO | OpFlag.DNRF

_RD = int(OpFlag.RD)
NO_FLAGS = OpFlag(0)


@dataclass(slots=True)
class Message:
    """One decoded (or to-be-encoded) message.

    ``header.body_length`` is recomputed on encode. ``request_digest`` is the digest slot of
    a response (None for requests). ``header_body`` holds the header + body bytes exactly as
    received, for request digests and signature checks; it is None for built messages.
    """

    header: Header
    body: Body
    envelope: Envelope = field(default_factory=Envelope)
    credential: Credential | None = None
    request_digest: RequestDigest | None = None
    header_body: bytes | None = field(default=None, repr=False, compare=False)
    # bytes a stream connection sends after this answer (the signed replication streams of
    # 1001/1002, ``wire.replication``); never encoded into the message itself
    stream: Any = field(default=None, repr=False, compare=False)

    @property
    def opcode(self) -> int:
        return self.header.opcode

    @property
    def response_code(self) -> int:
        return self.header.response_code

    @property
    def is_response(self) -> bool:
        return self.header.response_code != 0

    @property
    def request_id(self) -> int:
        return self.envelope.request_id


def decode_message(envelope: Envelope, payload: bytes) -> Message:
    """Decode the payload that followed ``envelope`` (multi-packet messages reassembled).

    Raises ``MalformedMessage`` for anything that does not decode, including encrypted or
    compressed payloads: decrypt first and pass an envelope with ``encrypted=False``.
    """
    if envelope.encrypted:
        raise MalformedMessage("decrypt the payload before decoding", field="envelope.encrypted")
    if envelope.compressed:
        raise MalformedMessage("compressed messages are not supported", field="envelope.flags")
    payload = bytes(payload)
    header = decode_header(payload)
    r = Reader(payload, HEADER_SIZE)
    body_bytes = r.raw(header.body_length, "body")
    credential = read_credential_section(r)

    br = Reader(body_bytes)
    digest = None
    if header.is_response and header.flags & OpFlag.RD:
        digest = read_request_digest(br)
    body = decode_body(header.opcode, header.response_code, br.rest(), digest)
    return Message(
        header=header,
        body=body,
        envelope=envelope,
        credential=credential,
        request_digest=digest,
        header_body=payload[: HEADER_SIZE + header.body_length],
    )


def decode_message_bytes(data: bytes, max_message: int = MAX_MESSAGE_LENGTH) -> Message:
    """Envelope + payload in one buffer (a single datagram or a TCP frame)."""
    envelope = decode_envelope(data, max_message)
    payload = data[ENVELOPE_SIZE:]
    if len(payload) != envelope.message_length:
        raise MalformedMessage(
            f"envelope announces {envelope.message_length} bytes but {len(payload)} follow",
            field="envelope.message_length",
        )
    return decode_message(envelope, payload)


def encode_header_body(msg: Message) -> bytes:
    """Header + [digest] + body: what request digests and signatures cover.

    Raises ``ValueError`` if the body does not belong to the header's (opcode, code), so a
    service bug cannot put a ResolutionResponse on the wire as an error.
    """
    expected = body_type(msg.header.opcode, msg.header.response_code)
    if not isinstance(msg.body, expected | RawBody):
        raise ValueError(
            f"opcode {int(msg.header.opcode)} / code {int(msg.header.response_code)} carries "
            f"{expected.__name__}, not {type(msg.body).__name__}"
        )
    digest = msg.body.digest if isinstance(msg.body, ChallengeResponse) else msg.request_digest
    flags = int(msg.header.flags)
    w = Writer()
    if msg.header.is_response:
        flags = flags | _RD if digest is not None else flags & ~_RD
        if digest is not None:
            write_request_digest(w, digest)
    elif digest is not None:
        raise ValueError("a request carries no request digest")
    w.raw(encode_body(msg.body))
    body = w.getvalue()
    header = replace(msg.header, flags=OpFlag(flags & 0xFFFFFFFF), body_length=len(body))
    return encode_header(header) + body


def encode_payload(msg: Message) -> bytes:
    """Everything after the envelope: header + body + credential section."""
    w = Writer().raw(encode_header_body(msg))
    write_credential_section(w, msg.credential)
    return w.getvalue()


def encode_message(msg: Message) -> bytes:
    """Envelope (with ``message_length`` filled in) + payload, as one buffer for TCP.

    For UDP use ``framing.split_datagrams(msg.envelope, encode_payload(msg))``.
    """
    payload = encode_payload(msg)
    return encode_envelope(replace(msg.envelope, message_length=len(payload))) + payload


def request_digest_of(request: Message, version: tuple[int, int]) -> RequestDigest:
    """The digest a response in ``version`` carries of ``request`` (as received if known)."""
    header_body = request.header_body
    if header_body is None:
        header_body = encode_header_body(request)
    return digest_request(header_body, digest_algorithm_for(version))


def _reply_envelope(request_env: Envelope, version: tuple[int, int]) -> Envelope:
    return Envelope(
        major=version[0],
        minor=version[1],
        suggest_major=OUR_VERSION[0],
        suggest_minor=OUR_VERSION[1],
        session_id=request_env.session_id,
        request_id=request_env.request_id,
    )


def make_response(
    request: Message,
    body: Body,
    code: int = ResponseCode.SUCCESS,
    flags: OpFlag = NO_FLAGS,
    *,
    site_serial: int = 0,
    expiration: int = 0,
) -> Message:
    """The answer to ``request``: same ids and opcode, in ``reply_version``, echoing the
    request's AT/CT/ENC/REC/CA/PO/DNRF flags plus ``flags``, with a request digest when
    the request had RD (and always for a challenge, as HSJ does).

    A ``ChallengeResponse`` body implies code 402. ``expiration`` is passed in because this
    layer has no clock. Raises ``ProtocolError`` when the request's version is unsupported.
    """
    version = reply_version(request.envelope)
    if isinstance(body, ChallengeResponse) and code == ResponseCode.SUCCESS:
        code = ResponseCode.AUTHENTICATION_NEEDED
    if code == ResponseCode.RESERVED:
        raise ValueError("a response needs a non-zero response code")
    header = Header(
        opcode=request.header.opcode,
        response_code=code,
        flags=(request.header.flags & ECHOED_FLAGS) | flags,
        site_serial=site_serial,
        recursion_count=request.header.recursion_count,
        expiration=expiration,
    )
    digest = None
    if isinstance(body, ChallengeResponse):
        digest = body.digest
    elif request.header.flags & OpFlag.RD:
        digest = request_digest_of(request, version)
    if digest is not None:
        header = replace(header, flags=header.flags | OpFlag.RD)
    return Message(header, body, _reply_envelope(request.envelope, version), None, digest)


def make_challenge(
    request: Message, nonce: bytes, *, site_serial: int = 0, expiration: int = 0
) -> Message:
    """A 402 challenge to ``request``: the nonce and a digest of the request (always sent).

    ``expiration`` as for every answer: HSJ's resolver refuses a challenge whose expiration
    has passed (0 included) before it even looks at the nonce."""
    digest = request_digest_of(request, reply_version(request.envelope))
    return make_response(
        request, ChallengeResponse(nonce, digest), site_serial=site_serial, expiration=expiration
    )


def make_error(
    request_envelope: Envelope,
    request_header: Header | None,
    code: int,
    text: str,
    indexes: tuple[int, ...] = (),
    *,
    expiration: int = 0,
) -> Message:
    """An error answer built from whatever of the request could be decoded.

    For requests that failed before their header decoded (``request_header`` None) the
    opcode is 0, as in HSJ. An unsupported request version is answered in 2.1. No request
    digest is attached (the request bytes may not exist); for a decoded request prefer
    ``make_response(request, ErrorResponse(text), code)``.

    ``expiration`` is passed in because this layer has no clock; a server must give one
    (HSJ stamps every message twelve hours ahead and its resolver refuses an error whose
    expiration has passed, 0 included: ``transport.wire_handler`` stamps what leaves).
    """
    if body_type(OpCode.RESERVED, code) is not ErrorResponse:
        raise ValueError(f"response code {int(code)} is not an error code")
    try:
        version = reply_version(request_envelope)
    except ProtocolError:
        version = SUPPORTED_VERSIONS[0]
    if request_header is None:
        header = Header(opcode=OpCode.RESERVED, response_code=code, expiration=expiration)
    else:
        header = Header(
            opcode=request_header.opcode,
            response_code=code,
            flags=request_header.flags & ECHOED_FLAGS,
            recursion_count=request_header.recursion_count,
            expiration=expiration,
        )
    body = ErrorResponse(text, tuple(indexes))
    return Message(header, body, _reply_envelope(request_envelope, version))


_U32 = struct.Struct(">I")


def patch_request_id(encoded: bytes, request_id: int) -> bytes:
    """A copy of an encoded message (or datagram) with another request id in its envelope.

    For a cache of encoded responses. Only valid for responses without a request digest or
    a credential from 2.7 on, since both depend on the original request.
    """
    if len(encoded) < ENVELOPE_SIZE:
        raise ValueError("not an encoded message: shorter than an envelope")
    return encoded[:8] + _U32.pack(request_id & 0xFFFFFFFF) + encoded[12:]
