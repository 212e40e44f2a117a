"""The credential section that closes every message (RFC 3652 section 2.2.4).

::

    CredentialLength    4 bytes; 0 means "no credential" and nothing follows
    Version             1 byte (0)
    Reserved            1 byte (0)
    Options             2 bytes
    Signer              HandleReference: UTF8-String handle + 4-byte index
    Type                UTF8-String: HS_SIGNED (public key), HS_MAC (session key), ...
    SignedInfo          4-byte length, then
        DigestAlgorithm UTF8-String (e.g. "SHA-256", "HMAC-SHA256")
        SignedData      4-byte length + signature bytes

HSJ writes an empty signer handle and puts its *session counter* in the signer index; we keep
whatever is there. ``signing_input`` gives the bytes HSJ signs or MACs, so the auth layer can
produce and check credentials without knowing the message layout.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from idnode.encoding import Reader, Writer
from idnode.model import ValueReference
from idnode.wire.envelope import Envelope

CREDENTIAL_SIGNED = "HS_SIGNED"
CREDENTIAL_MAC = "HS_MAC"
CREDENTIAL_OLD_SIGNED = "HS_DSAPUBKEY"


@dataclass(frozen=True, slots=True)
class Credential:
    """A decoded credential. ``signer.index`` carries HSJ's session counter."""

    type: str = CREDENTIAL_SIGNED
    digest_algorithm: str = "SHA-256"
    signature: bytes = b""
    signer: ValueReference = field(default_factory=lambda: ValueReference("", 0))
    version: int = 0
    options: int = 0

    def encode(self) -> bytes:
        """The section contents, without the leading CredentialLength."""
        signed = Writer().utf8(self.digest_algorithm).bytes32(self.signature).getvalue()
        w = Writer()
        w.u8(self.version).u8(0).u16(self.options)
        w.utf8(self.signer.handle).u32(self.signer.index)
        w.utf8(self.type).bytes32(signed)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Credential:
        r = Reader(data)
        version = r.u8("credential.version")
        r.u8("credential.reserved")
        options = r.u16("credential.options")
        signer_handle = r.utf8("credential.signer.handle")
        signer_index = r.i32("credential.signer.index")
        type_ = r.utf8("credential.type")
        signed = Reader(r.bytes32("credential.signed_info"))
        algorithm = signed.utf8("credential.digest_algorithm")
        signature = signed.bytes32("credential.signed_data")
        signed.expect_end("credential.signed_info")
        r.expect_end("credential")
        return cls(
            type=type_,
            digest_algorithm=algorithm,
            signature=signature,
            signer=ValueReference(signer_handle, signer_index),
            version=version,
            options=options,
        )


def read_credential_section(r: Reader) -> Credential | None:
    """CredentialLength and what follows; a message that simply ends here has none.

    RFC 3652 makes the length mandatory, but HSJ reads it only "if there is room", so a
    missing section is accepted as no credential.
    """
    if r.remaining == 0:
        return None
    data = r.bytes32("credential")
    r.expect_end("message")
    return Credential.decode(data) if data else None


def write_credential_section(w: Writer, cred: Credential | None) -> None:
    w.bytes32(cred.encode() if cred is not None else b"")


_I32 = struct.Struct(">I")


def signing_input(
    envelope: Envelope, header_body: bytes, session_counter: int = 0, *, mac: bool = False
) -> bytes:
    """The exact bytes HSJ signs (``HS_SIGNED``) or MACs (``HS_MAC``) for a message.

    ``header_body`` is the encoded header + body (no envelope, no credential); the version,
    session id and request id come from ``envelope`` (the decoded or the outgoing one).
    From 2.6 (signatures) / 2.7 (MACs) HSJ prefixes envelope fields:
    major, minor, [suggested major, suggested minor from 2.8], session id, request id,
    session counter. HSJ 2.6 had an offset bug that we reproduce byte for byte; the 2.5-2.6
    MAC variant mixes in the secret key and is not expressible here (``ValueError``).
    """
    version = envelope.version
    if mac:
        if version < (2, 5):
            return bytes(header_body)
        if version < (2, 7):
            raise ValueError("HS_MAC of protocol 2.5-2.6 needs the key; not supported")
    elif version < (2, 6):
        return bytes(header_body)

    ids = (envelope.session_id, envelope.request_id, session_counter & 0xFFFFFFFF)
    if version < (2, 7):
        # HSJ 2.6 assigned writeInt's return value (4) to the offset instead of adding it, so
        # the three ints overwrite each other from byte 2 and 4, leaving six zero bytes.
        prefix = bytearray(2 + 12)
        prefix[0], prefix[1] = envelope.major, envelope.minor
        _I32.pack_into(prefix, 2, ids[0])
        _I32.pack_into(prefix, 4, ids[1])
        _I32.pack_into(prefix, 4, ids[2])
        return bytes(prefix) + bytes(header_body)

    w = Writer().u8(envelope.major).u8(envelope.minor)
    if version >= (2, 8):
        w.u8(envelope.suggest_major).u8(envelope.suggest_minor)
    for value in ids:
        w.u32(value)
    return w.getvalue() + bytes(header_body)
