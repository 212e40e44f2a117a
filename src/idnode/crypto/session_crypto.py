"""The cryptography of Handle sessions (RFC 3652 section 3.8) as HSJ and the IDIS SDK do it.

Everything here is a pure function of its inputs (plus the randomness it is given): the
session protocol itself -- who sends what, when a key is used -- is ``idnode.auth.session_suites``
and ``idnode.transport.wire_sessions``. What HSJ (``net.handle.security.provider.GenericProvider``,
``SessionInfo``, ``Util``) does, byte for byte:

* **Session ciphers**, by the algorithm code sent in front of every session key
  (``HdlSecurityProvider.ENCRYPT_ALG_*``): 1 DES, 2 DESede, 3 AES, and the IDIS SDK's 4 SM4.
  A message is encrypted whole (header + body + credential, after any MAC) in CBC mode with
  PKCS#5 padding; HSJ (protocol 2.4 and later) puts a fresh IV in front of the ciphertext
  (8 bytes for DES/DESede, 16 for AES) and uses only the first 16 bytes of a longer AES key,
  the first 8 of a DES key and the first 24 of a DESede key. The IDIS SDK encrypts SM4 with
  the session key as its own IV and sends no IV (``MessagePacketsManager``, hutool
  ``SM4(CBC, PKCS5Padding, key, key)``): a fixed IV, so equal plaintext prefixes give equal
  ciphertext prefixes -- a weakness of that format, kept because SDK clients expect it.
* **Diffie-Hellman** (key exchange mode 4): a public key travels in HSJ's ``DH_PUB_KEY``
  encoding (``Util.getBytesFromPublicKey``): the UTF-8 string ``DH_PUB_KEY``, 2 reserved bytes,
  then y, p and g, each a 4-byte length and Java ``BigInteger.toByteArray()`` bytes. The
  shared secret is Java's ``KeyAgreement.generateSecret()``: big-endian, as long as p. HSJ
  derives the session key from it (``getKeyFromDH``): for AES, skip leading zero bytes (while
  32 bytes remain) and take 32 bytes; for DES/DESede, the first 8/24 bytes with odd parity.
  For SM4 (no HSJ counterpart; inferred, see docs/crypto.md) the AES rule, then 16 bytes.
* **MACs**: HSJ MACs a session message (protocol 2.7 and later) with HMAC-SHA256 under the
  whole session key (``AbstractMessage.signMessage(byte[])``, ``Util.doMac``); what it covers
  is ``wire.credential.signing_input``. The ``idis-sm`` suite uses HMAC-SM3 the same way.
* **Key transport** (modes 1, 2, 3 and re-keying): RSA with PKCS#1 v1.5 padding (HSJ
  ``Util.encrypt``: ``RSA/ECB/PKCS1``), or SM2 (GB/T 32918.4, ``C1C3C2``) for SM2 keys as the
  IDIS SDK decrypts them (``crypto.sm2_cipher``).

Randomness: DH private keys and RSA padding come from ``cryptography`` (OpenSSL), as for every
primitive called like ``cryptography``'s own; session keys and IVs from the ``Random`` the
caller passes (the node's ``runtime.random``, a client's ``runtime.ENTROPY``).

``cryptography`` deprecates finite-field DH and refuses groups that are not safe primes without
their subgroup order (Java 8's 1024-bit DH parameters are of that kind). For those, and for the
day ``cryptography`` drops FFDH, the agreement falls back to Python's modular exponentiation
with the same checks: a group of 1024 to 4096 bits and a peer value in [2, p-2].
"""

from __future__ import annotations

import hmac
import warnings
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric import dh, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from idnode.crypto import sm2_cipher
from idnode.crypto.keys import PrivateKey, PublicKey, java_bytes
from idnode.crypto.sm2 import SM2PrivateKey, SM2PublicKey
from idnode.encoding import Reader, Writer
from idnode.errors import IdnodeError, InvalidValue
from idnode.runtime import ENTROPY, Random

try:  # cryptography 43+: single DES and 3DES live in the "decrepit" package
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # pragma: no cover - older cryptography
    TripleDES = algorithms.TripleDES  # type: ignore[attr-defined,misc]

try:
    from cryptography.utils import CryptographyDeprecationWarning
except ImportError:  # pragma: no cover
    CryptographyDeprecationWarning = DeprecationWarning  # type: ignore[misc,assignment]

# --- session ciphers (HdlSecurityProvider.ENCRYPT_ALG_*; SM4 is the IDIS SDK's) -----------------

ALG_DES = 1
ALG_DESEDE = 2
ALG_AES = 3
ALG_SM4 = 4
ALGORITHM_NAMES = {ALG_DES: "DES", ALG_DESEDE: "DESede", ALG_AES: "AES", ALG_SM4: "SM4"}
# bytes of a fresh session key of each kind (AES: what JDK KeyGenerator("AES") gives by default)
KEY_SIZES = {ALG_DES: 8, ALG_DESEDE: 24, ALG_AES: 16, ALG_SM4: 16}
# bytes a session key must have at least (a DH-derived AES key is 32, its cipher uses 16)
_MIN_KEY = {ALG_DES: 8, ALG_DESEDE: 24, ALG_AES: 16, ALG_SM4: 16}
_MAX_KEY = 64

MAC_HMAC_SHA256 = "HMAC-SHA256"  # HSJ Common.HASH_ALG_HMAC_SHA256
MAC_HMAC_SM3 = "HMAC-SM3"  # the idis-sm suite's (inferred: the SDK MACs nothing)
_MAC_HASHES = {MAC_HMAC_SHA256: hashes.SHA256, MAC_HMAC_SM3: hashes.SM3}


class SessionCryptoError(InvalidValue):
    """Session key material that does not decode, decrypt or verify."""


def check_algorithm(algorithm: int) -> int:
    if algorithm not in ALGORITHM_NAMES:
        raise SessionCryptoError(f"unknown session cipher {algorithm}")
    return algorithm


def check_session_key(algorithm: int, key: bytes) -> bytes:
    """``key`` if it can serve ``algorithm`` (long enough; not absurdly long)."""
    check_algorithm(algorithm)
    if not _MIN_KEY[algorithm] <= len(key) <= _MAX_KEY:
        raise SessionCryptoError(
            f"a {ALGORITHM_NAMES[algorithm]} session key of {len(key)} bytes is not usable"
        )
    return bytes(key)


def generate_session_key(algorithm: int, random_bytes: Random) -> bytes:
    """A fresh session key (DES keys with odd parity, as JDK key generators make them)."""
    key = bytes(random_bytes(KEY_SIZES[check_algorithm(algorithm)]))
    return _odd_parity(key) if algorithm in (ALG_DES, ALG_DESEDE) else key


def _odd_parity(key: bytes) -> bytes:
    out = bytearray()
    for byte in key:
        b = byte & 0xFE
        out.append(b | ((b.bit_count() & 1) ^ 1))
    return bytes(out)


def _cipher(algorithm: int, key: bytes) -> tuple[object, int]:
    """The block cipher of a session key, and its block size in bytes."""
    if algorithm == ALG_AES:
        return algorithms.AES(key[:16]), 16
    if algorithm == ALG_SM4:
        return algorithms.SM4(key[:16]), 16
    with warnings.catch_warnings():  # 3DES is "decrepit": wanted here for HSJ's old sessions
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        if algorithm == ALG_DES:
            return TripleDES(key[:8] * 3), 8  # K1 = K2 = K3 is single DES
        if algorithm == ALG_DESEDE:
            return TripleDES(key[:24]), 8
    raise SessionCryptoError(f"unknown session cipher {algorithm}")


def encrypt_buffer(algorithm: int, key: bytes, plaintext: bytes, random_bytes: Random) -> bytes:
    """A whole message encrypted under the session key (HSJ ``SessionInfo.encryptBuffer``)."""
    cipher, block = _cipher(algorithm, check_session_key(algorithm, key))
    if algorithm == ALG_SM4:
        iv, prefix = key[:16], b""  # the IDIS SDK's fixed IV
    else:
        iv = bytes(random_bytes(block))
        prefix = iv
    padder = padding.PKCS7(block * 8).padder()
    data = padder.update(bytes(plaintext)) + padder.finalize()
    enc = Cipher(cipher, modes.CBC(iv)).encryptor()  # type: ignore[arg-type]
    return prefix + enc.update(data) + enc.finalize()


def decrypt_buffer(algorithm: int, key: bytes, data: bytes) -> bytes:
    """The plaintext of ``encrypt_buffer``; ``SessionCryptoError`` if it is not one."""
    cipher, block = _cipher(algorithm, check_session_key(algorithm, key))
    data = bytes(data)
    if algorithm == ALG_SM4:
        iv, body = key[:16], data
    else:
        iv, body = data[:block], data[block:]
    if not body or len(body) % block:
        raise SessionCryptoError("encrypted message of a wrong length for its cipher")
    dec = Cipher(cipher, modes.CBC(iv)).decryptor()  # type: ignore[arg-type]
    padded = dec.update(body) + dec.finalize()
    unpadder = padding.PKCS7(block * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except (ValueError, InvalidTag):
        raise SessionCryptoError("the message does not decrypt under the session key") from None


# --- MACs ------------------------------------------------------------------------------------


def mac(algorithm: str, key: bytes, data: bytes) -> bytes:
    """HMAC of ``data`` under the session key; ``algorithm`` as written in HS_MAC credentials."""
    try:
        hash_cls = _MAC_HASHES[algorithm.upper()]
    except KeyError:
        raise SessionCryptoError(f"unsupported session MAC {algorithm!r}") from None
    h = crypto_hmac.HMAC(bytes(key), hash_cls())
    h.update(bytes(data))
    return h.finalize()


def verify_mac(algorithm: str, key: bytes, data: bytes, tag: bytes) -> bool:
    try:
        return hmac.compare_digest(mac(algorithm, key, data), bytes(tag))
    except SessionCryptoError:
        return False


# --- Diffie-Hellman (key exchange mode 4) -----------------------------------------------------

DH_PUB_KEY = "DH_PUB_KEY"  # HSJ Common.KEY_ENCODING_DH_PUBLIC
MIN_DH_BITS = 1024  # HSJ clients send 1024-bit groups (SessionSetupInfo.initDHKeys)
MAX_DH_BITS = 4096  # bounds the work a stranger's session setup costs the server

# RFC 3526 group 14 (2048-bit MODP, generator 2): what idnode's clients offer
RFC3526_GROUP14_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E34"
    "04DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6"
    "F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A6916"
    "3FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C"
    "32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA95"
    "6AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)
RFC3526_GROUP14_G = 2


@dataclass(frozen=True, slots=True)
class DHPublic:
    """A DH public value with its group."""

    p: int
    g: int
    y: int

    def encode(self) -> bytes:
        """HSJ ``Util.getBytesFromPublicKey`` for a ``DHPublicKey``."""
        w = Writer().utf8(DH_PUB_KEY).u16(0)
        for n in (self.y, self.p, self.g):
            w.bytes32(java_bytes(n))
        return w.getvalue()

    @property
    def size(self) -> int:
        """Bytes of p: the length of Java's shared secret."""
        return (self.p.bit_length() + 7) // 8


def decode_dh_public(data: bytes) -> DHPublic:
    """A ``DH_PUB_KEY`` value, checked so a stranger cannot make us compute in a weak group."""
    try:
        r = Reader(bytes(data))
        kind = r.bytes32("dh.type")
        r.u16("dh.flags")
        y, p, g = (int.from_bytes(r.bytes32(f"dh.{n}"), "big") for n in "ypg")
    except IdnodeError:
        raise SessionCryptoError("not a DH_PUB_KEY public key") from None
    if kind != DH_PUB_KEY.encode():
        raise SessionCryptoError(f"a DH public key was expected, not {kind[:32]!r}")
    check_dh_group(p, g)
    check_dh_value(p, y)
    return DHPublic(p, g, y)


def check_dh_group(p: int, g: int) -> None:
    if not MIN_DH_BITS <= p.bit_length() <= MAX_DH_BITS or p % 2 == 0:
        raise SessionCryptoError(
            f"DH group of {p.bit_length()} bits refused ({MIN_DH_BITS}-{MAX_DH_BITS} accepted)"
        )
    if not 2 <= g <= p - 2:
        raise SessionCryptoError("DH generator out of range")


def check_dh_value(p: int, y: int) -> None:
    if not 2 <= y <= p - 2:  # 0, 1 and p-1 would fix the shared secret
        raise SessionCryptoError("DH public value out of range")


class DHKeyPair:
    """An ephemeral DH key in a given group: ``public`` to send, ``agree`` with the peer's."""

    def __init__(self, p: int, g: int, *, random_bytes: Random = ENTROPY) -> None:
        check_dh_group(p, g)
        self._key: dh.DHPrivateKey | None = None
        self._x = 0
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                self._key = dh.DHParameterNumbers(p, g).parameters().generate_private_key()
            y = self._key.public_key().public_numbers().y
        except (ValueError, TypeError):  # not a safe-prime group, or FFDH gone
            self._x = _exponent(p, random_bytes)
            y = pow(g, self._x, p)
        self.public = DHPublic(p, g, y)

    def agree(self, peer: DHPublic) -> bytes:
        """Java's ``generateSecret()``: g^(xy) mod p, big-endian, padded to the length of p."""
        if (peer.p, peer.g) != (self.public.p, self.public.g):
            raise SessionCryptoError("the peer's DH key is in another group")
        check_dh_value(peer.p, peer.y)
        if self._key is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                    group = dh.DHParameterNumbers(peer.p, peer.g)
                    peer_key = dh.DHPublicNumbers(peer.y, group).public_key()
                    secret = self._key.exchange(peer_key)
            except ValueError:
                raise SessionCryptoError("the peer's DH public value is not valid") from None
        else:
            z = pow(peer.y, self._x, peer.p)
            if z in (0, 1, peer.p - 1):
                raise SessionCryptoError("the peer's DH public value is not valid")
            secret = z.to_bytes(peer.size, "big")
        return secret.rjust(peer.size, b"\0")


def _exponent(p: int, random_bytes: Random) -> int:
    bits = p.bit_length() - 1
    while True:
        x = int.from_bytes(random_bytes((bits + 7) // 8), "big") & ((1 << bits) - 1)
        if x >= 2:
            return x


def key_from_dh(secret: bytes, algorithm: int) -> bytes:
    """The session key HSJ derives from a DH secret (``GenericProvider.getKeyFromDH``)."""
    check_algorithm(algorithm)
    if algorithm in (ALG_DES, ALG_DESEDE):
        size = 8 if algorithm == ALG_DES else 24
        if len(secret) < size:
            raise SessionCryptoError("DH secret too short")
        return _odd_parity(secret[:size])
    i = 0
    while i + 32 < len(secret) and secret[i] == 0:  # stripLeadingZerosAndTruncate(secret, 32)
        i += 1
    key = secret[i : i + 32]
    return key[:16] if algorithm == ALG_SM4 else key


# --- key transport: a session key encrypted to a public key (modes 1, 2, 3) ------------------


def can_wrap(key: PublicKey | PrivateKey) -> bool:
    """Whether session keys can be encrypted to (or with) this kind of key: RSA and SM2."""
    return isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey | SM2PublicKey | SM2PrivateKey)


def wrap_key(public_key: PublicKey, data: bytes, random_bytes: Random = ENTROPY) -> bytes:
    """``data`` encrypted to ``public_key``: RSA PKCS#1 v1.5 (HSJ) or SM2 C1C3C2 (IDIS SDK)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key.encrypt(bytes(data), PKCS1v15())
    if isinstance(public_key, SM2PublicKey):
        return sm2_cipher.encrypt(public_key, data, random_bytes=random_bytes)
    raise SessionCryptoError(
        f"cannot encrypt a session key to a {type(public_key).__name__}: RSA or SM2 only"
    )


def unwrap_key(private_key: PrivateKey, data: bytes) -> bytes:
    """The plaintext of ``wrap_key``; ``SessionCryptoError`` when it is not for this key."""
    try:
        if isinstance(private_key, rsa.RSAPrivateKey):
            return private_key.decrypt(bytes(data), PKCS1v15())
        if isinstance(private_key, SM2PrivateKey):
            return sm2_cipher.decrypt(private_key, data)
    except (ValueError, IdnodeError):
        raise SessionCryptoError("the session key does not decrypt with this key") from None
    raise SessionCryptoError(
        f"cannot decrypt a session key with a {type(private_key).__name__}: RSA or SM2 only"
    )


def pack_key(algorithm: int, key: bytes) -> bytes:
    """The algorithm code (4 bytes) then the key: what modes 1-3 encrypt (protocol >= 2.2)."""
    return Writer().u32(check_algorithm(algorithm)).raw(bytes(key)).getvalue()


def unpack_key(data: bytes) -> tuple[int, bytes]:
    """``pack_key`` read back, the key checked against its algorithm."""
    if len(data) < 4:
        raise SessionCryptoError("a session key needs its algorithm code")
    algorithm = int.from_bytes(data[:4], "big")
    return algorithm, check_session_key(algorithm, data[4:])
