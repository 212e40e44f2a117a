"""The client half of a HANDLE.NET Diffie-Hellman session, written from RFC 3652 §3.8 and
HSJ's documented layouts with ``cryptography`` only -- not from ``idnode.auth.session_suites``
or ``idnode.crypto.session_crypto``, so the session tests check idnode against a second,
independent implementation of the same exchange.

What HSJ's ``HandleResolver`` does before an administrative request:

* ``SessionSetupRequest`` (opcode 400): KeyExchangeMode (2 bytes; 4 = ``KEY_EXCHANGE_DH``),
  Timeout (4), the identity (UTF8 handle, 4-byte index) and the client's DH public key as
  HSJ encodes one (``Util.getBytesFromPublicKey``): UTF8 ``DH_PUB_KEY``, 2 reserved bytes, then
  y, p, g as 4-byte lengths and Java ``BigInteger.toByteArray()`` bytes.
* The answer (``SessionSetupResponse``): the mode (2 bytes), then a 4-byte length and data:
  the session cipher code (4 bytes; 3 = AES) and the server's ``DH_PUB_KEY`` in our group. Its
  envelope carries the new session id.
* The session key: Java's ``generateSecret()`` (big-endian, as long as p), leading zero bytes
  skipped while 32 remain, 32 bytes taken (``getKeyFromDH`` for AES). AES-CBC uses its first
  16 bytes; the MAC the whole key.
* Every later request carries the session id and an HS_MAC credential (RFC 3652 §2.2.4): an
  empty signer handle whose index is the session counter, type ``HS_MAC``, algorithm
  ``HMAC-SHA256``, the HMAC under the session key of (protocol 2.8+): major, minor, suggested
  major, suggested minor (1 byte each), session id, request id, counter (4 bytes each), then
  the header and body.
* An encrypted message (envelope flag EC) is header + body + credential under AES-128-CBC,
  PKCS#5 padding, a fresh 16-byte IV in front (HSJ ``SessionInfo.encryptBuffer``, 2.4+).
* ``SessionExchangeKey`` (opcode 402): a 4-byte length and the new key, prefixed by its
  cipher code (4 bytes), encrypted to the server's RSA key with PKCS#1 v1.5.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import warnings
from dataclasses import dataclass

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric import dh, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.hsj_peer.codec import ENVELOPE_SIZE, HEADER_SIZE, utf8

OC_DELETE_HANDLE = 101
OC_SESSION_SETUP = 400
OC_SESSION_EXCHANGEKEY = 402
KEY_EXCHANGE_DH = 4
ALG_AES = 3
FLAG_CT = 0x40000000  # certified: MAC the answer (in a session)
FLAG_ENC = 0x20000000  # encrypt the answer
ENV_ENCRYPTED = 0x40  # envelope flag byte (byte 2): EC
VERSION = (2, 11)  # what HANDLE.NET 9 speaks and suggests

RC_SESSION_TIMEOUT = 500
RC_SESSION_FAILED = 501
RC_INVALID_SESSION_KEY = 502

# RFC 2409 §6.2, the 1024-bit Oakley group 2: a 1024-bit group as HSJ's clients send
OAKLEY_GROUP2_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22"
    "514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6"
    "F44C42E9A637ED6B0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381"
    "FFFFFFFFFFFFFFFF",
    16,
)


def java_bytes(n: int) -> bytes:
    """Java ``BigInteger.toByteArray()`` of a non-negative n: minimal, with a sign bit."""
    return n.to_bytes(n.bit_length() // 8 + 1, "big")


def bytes32(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def envelope(request_id: int, session_id: int, length: int, *, encrypted: bool = False) -> bytes:
    """RFC 3652 §2.2.1 with HSJ 2.10+'s suggested version in byte 2's low bits and byte 3."""
    flags = (ENV_ENCRYPTED if encrypted else 0) | VERSION[0]
    return struct.pack(
        ">BBBBIIII", VERSION[0], VERSION[1], flags, VERSION[1], session_id, request_id, 0, length
    )


def header(opcode: int, flags: int, body: bytes) -> bytes:
    return struct.pack(">IIIHBBII", opcode, 0, flags, 0, 0, 0, 0, len(body))


def mac_input(env: bytes, counter: int, header_body: bytes) -> bytes:
    """What HSJ 2.8+ MACs: the versions (4 bytes of the envelope, the flags masked off byte
    2), session id, request id, the counter, then header + body."""
    versions = bytes([env[0], env[1], env[2] & 0x1F, env[3]])
    return versions + env[4:12] + struct.pack(">I", counter) + header_body


def mac_credential(key: bytes, env: bytes, counter: int, header_body: bytes) -> bytes:
    """The credential section (with its 4-byte length) carrying an HS_MAC."""
    tag = hmac.new(key, mac_input(env, counter, header_body), hashlib.sha256).digest()
    signed = utf8("HMAC-SHA256") + bytes32(tag)
    section = b"\0\0\0\0" + utf8("") + struct.pack(">I", counter) + utf8("HS_MAC") + bytes32(signed)
    return bytes32(section)


@dataclass(frozen=True)
class Credential:
    signer_index: int
    type: str
    algorithm: str
    signature: bytes


def split_answer(data: bytes) -> tuple[bytes, bytes, bytes, Credential | None]:
    """(envelope, header + body, body, credential) of a plaintext answer."""
    env = data[:ENVELOPE_SIZE]
    (body_length,) = struct.unpack_from(">I", data, ENVELOPE_SIZE + 20)
    end = ENVELOPE_SIZE + HEADER_SIZE + body_length
    header_body = data[ENVELOPE_SIZE:end]
    body = data[ENVELOPE_SIZE + HEADER_SIZE : end]
    rest = data[end:]
    if len(rest) < 4 or rest[:4] == b"\0\0\0\0":
        return env, header_body, body, None
    return env, header_body, body, _credential(rest[4:])


def _credential(data: bytes) -> Credential:
    """RFC 3652 §2.2.4 after its length: version, reserved, options, signer, type, signed."""
    offset = 4
    handle, offset = _string(data, offset)
    (index,) = struct.unpack_from(">I", data, offset)
    kind, offset = _string(data, offset + 4)
    signed, _ = _string(data, offset, text=False)
    algorithm, inner = _string(signed, 0)
    signature, _ = _string(signed, inner, text=False)
    return Credential(index, kind, algorithm, signature)


def _string(data: bytes, offset: int, *, text: bool = True):
    (length,) = struct.unpack_from(">I", data, offset)
    chunk = data[offset + 4 : offset + 4 + length]
    return (chunk.decode("utf-8") if text else chunk), offset + 4 + length


class DHClient:
    """One client's side of a mode-4 session: its DH key, then the session key."""

    def __init__(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params = dh.DHParameterNumbers(OAKLEY_GROUP2_P, 2).parameters()
            self._private = params.generate_private_key()
        self.key = b""
        self.cipher = 0
        self.session_id = 0
        self.counter = 0

    def public_key(self) -> bytes:
        y = self._private.public_key().public_numbers().y
        return (
            utf8("DH_PUB_KEY")
            + b"\0\0"
            + b"".join(bytes32(java_bytes(n)) for n in (y, OAKLEY_GROUP2_P, 2))
        )

    def setup_request(
        self, identity: str, index: int, *, request_id: int, timeout: int = 0
    ) -> bytes:
        body = struct.pack(">HI", KEY_EXCHANGE_DH, timeout) + utf8(identity)
        body += struct.pack(">I", index) + bytes32(self.public_key())
        message = header(OC_SESSION_SETUP, 0, body) + body + b"\0\0\0\0"
        return envelope(request_id, 0, len(message)) + message

    def accept(self, session_id: int, body: bytes) -> None:
        """Read the setup answer's body; derive the session key (HSJ ``getKeyFromDH``)."""
        (mode, length) = struct.unpack_from(">HI", body, 0)
        assert mode == KEY_EXCHANGE_DH
        data = body[6 : 6 + length]
        (self.cipher,) = struct.unpack_from(">I", data, 0)
        kind, offset = _string(data, 4)
        assert kind == "DH_PUB_KEY"
        offset += 2
        y_bytes, offset = _string(data, offset, text=False)
        p_bytes, offset = _string(data, offset, text=False)
        assert int.from_bytes(p_bytes, "big") == OAKLEY_GROUP2_P  # answered in our group
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            group = dh.DHParameterNumbers(OAKLEY_GROUP2_P, 2)
            theirs = dh.DHPublicNumbers(int.from_bytes(y_bytes, "big"), group).public_key()
            secret = self._private.exchange(theirs).rjust(128, b"\0")
        start = 0
        while start + 32 < len(secret) and secret[start] == 0:
            start += 1
        self.key = secret[start : start + 32]
        self.session_id = session_id

    def request(
        self, opcode: int, body: bytes, *, request_id: int, flags: int = 0, key: bytes | None = None
    ) -> bytes:
        """A request of this session, MAC'd under ``key`` (the session key by default)."""
        self.counter += 1
        header_body = header(opcode, flags, body) + body
        cred_len = len(mac_credential(b"k", b"\0" * 20, 0, b""))
        env = envelope(request_id, self.session_id, len(header_body) + cred_len)
        cred = mac_credential(self.key if key is None else key, env, self.counter, header_body)
        return env + header_body + cred

    def verify_mac(self, data: bytes) -> bool:
        """Whether a certified answer's HS_MAC verifies under the session key."""
        env, header_body, _, cred = split_answer(data)
        if cred is None or cred.type != "HS_MAC":
            return False
        expected = hmac.new(
            self.key, mac_input(env, cred.signer_index, header_body), hashlib.sha256
        ).digest()
        return cred.algorithm.upper() == "HMAC-SHA256" and hmac.compare_digest(
            expected, cred.signature
        )

    def decrypt(self, data: bytes) -> bytes:
        """An encrypted answer (EC set) as its plaintext envelope + message."""
        env = data[:ENVELOPE_SIZE]
        assert env[2] & ENV_ENCRYPTED, "the answer is not encrypted"
        payload = data[ENVELOPE_SIZE:]
        iv, sealed = payload[:16], payload[16:]
        plain = Cipher(algorithms.AES(self.key[:16]), modes.CBC(iv)).decryptor()
        padded = plain.update(sealed) + plain.finalize()
        unpad = padding.PKCS7(128).unpadder()
        message = unpad.update(padded) + unpad.finalize()
        clear = bytes([env[0], env[1], env[2] & ~ENV_ENCRYPTED, env[3]]) + env[4:16]
        return clear + struct.pack(">I", len(message)) + message

    def exchange_key(self, server_key: rsa.RSAPublicKey, *, request_id: int) -> tuple[bytes, bytes]:
        """(the SessionExchangeKey request, the new key): a fresh AES key sent to the server's
        RSA key, MAC'd under the current one."""
        new_key = os.urandom(16)  # a test's key, not idnode's: no Runtime needed here
        sealed = server_key.encrypt(struct.pack(">I", ALG_AES) + new_key, PKCS1v15())
        return self.request(OC_SESSION_EXCHANGEKEY, bytes32(sealed), request_id=request_id), new_key
