"""Key formats of the Handle System, as the Handle.Net (HSJ) software reads and writes them.

HS_PUBKEY data (HSJ ``Util.getBytesFromPublicKey``; RFC 3651 section 3.2.4)::

    KeyType    UTF8-String  "RSA_PUB_KEY" | "DSA_PUB_KEY" | "SM2_PUB_KEY" | "ED25519_PUB_KEY"
                            | "DH_PUB_KEY" (a session's key exchange only: ``*_dh_public_key``)
    Flags      2 bytes      reserved, written as 0, ignored when read
    RSA:       e, n         each a 4-byte length + big-endian bytes
    DSA:       q, p, g, y   idem
    DH:        y, p, g      idem (HSJ's order)
    SM2:       spki         4-byte length + X.509 SubjectPublicKeyInfo DER (id-ecPublicKey,
                            sm2p256v1, 04||X||Y): the Teleinfo IDIS SDK's layout
    Ed25519:   key          4-byte length + the 32-byte RFC 8032 public key (ours; HSJ has none)

Numbers are written like Java's ``BigInteger.toByteArray()`` (two's complement, so a leading
zero byte when the top bit is set) and read as unsigned, so our bytes equal HSJ's bytes.

HSJ's RSA encoder sizes its buffer for one 4-byte length more than it writes, so every
RSA_PUB_KEY HANDLE.NET writes (an HS_SITE's server key, an admin's HS_PUBKEY) ends with four
zero bytes: an empty trailing field. HSJ's reader stops after the last number. We read a key
with or without that empty field, of every type, and refuse any other trailing bytes; we
write the canonical form without it (HSJ reads both).

Private key bytes (HSJ ``Util.getBytesFromPrivateKey``; no flags field)::

    "DSA_PRIV_KEY"     x, p, q, g
    "RSA_PRIVCRT_KEY"  n, e, d, p, q, d mod (p-1), d mod (q-1), q^-1 mod p
    "RSA_PRIV_KEY"     n, d         (read only: the primes are recovered trying common e)
    "SM2_PRIV_KEY"     PKCS#8 DER   (one 4-byte-length field; the SDK's PKCS8EncodedKeySpec)
    "ED25519_PRIV_KEY" seed         (the 32-byte RFC 8032 private key; ours)

Private key files (``admpriv.bin``, ``privkey.bin``) wrap those bytes (HSJ ``Util.encrypt``)::

    EncryptionType  4 bytes   1 = none, 4 = PBKDF2-HMAC-SHA1 + AES-CBC, 3 = ... + DESede-CBC
    none:           the key bytes
    3 / 4:          salt (4-byte length + bytes), iterations (4), key bits (4),
                    IV (4-byte length + bytes), ciphertext (4-byte length + bytes)

Types 0 and 2 (single DES keyed by MD5 of the passphrase) are refused: insecure and long gone.
A file whose first 4-byte number is above 9 is a bare key encoding (HSJ's ``MAX_ENCRYPT``
rule: every key-type string is longer than 9 bytes).

Signatures follow Java's ``SHA1withRSA`` / ``SHA256withRSA`` (PKCS#1 v1.5) and
``SHA1withDSA`` / ``SHA256withDSA`` (DER-encoded ``SEQUENCE {r, s}``). SM2 keys always sign
``SM3withSM2`` (DER ``r, s``, user id ``1234567812345678``; ``idnode.crypto.sm2``) and
Ed25519 keys pure Ed25519: their key type fixes the algorithm, so the hash name passed to
``sign``/``verify`` is not consulted for them (``default_hash`` names the right one to write).
See ``docs/crypto.md``.
"""

from __future__ import annotations

import base64
import binascii
import warnings
from collections.abc import Callable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import dh, dsa, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.utils import CryptographyDeprecationWarning

from idnode.crypto import sm2
from idnode.crypto.sm2 import SM2PrivateKey, SM2PublicKey
from idnode.encoding import Reader, Writer
from idnode.errors import IdnodeError, InvalidValue, MalformedMessage
from idnode.runtime import ENTROPY, Random

# DSA stays on purpose: HANDLE.NET made DSA keys by default for years, and identifiers and
# admins still carry them (HS_PUBKEY, HS_SITE). cryptography 51 deprecates DSA and warns on
# every use, which would land in every CLI's one-line error output; its removal will need
# a decision (refuse DSA values with a clear message), not a warning in operators' logs.
warnings.filterwarnings("ignore", "DSA is deprecated", CryptographyDeprecationWarning)

PublicKey = rsa.RSAPublicKey | dsa.DSAPublicKey | SM2PublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | dsa.DSAPrivateKey | SM2PrivateKey | ed25519.Ed25519PrivateKey
_PUBLIC_TYPES = (rsa.RSAPublicKey, dsa.DSAPublicKey, SM2PublicKey, ed25519.Ed25519PublicKey)
_PRIVATE_TYPES = (rsa.RSAPrivateKey, dsa.DSAPrivateKey, SM2PrivateKey, ed25519.Ed25519PrivateKey)

RSA_PUB_KEY = "RSA_PUB_KEY"
DSA_PUB_KEY = "DSA_PUB_KEY"
DH_PUB_KEY = "DH_PUB_KEY"
RSA_PRIV_KEY = "RSA_PRIV_KEY"
RSA_PRIVCRT_KEY = "RSA_PRIVCRT_KEY"
DSA_PRIV_KEY = "DSA_PRIV_KEY"
SM2_PUB_KEY = "SM2_PUB_KEY"  # Teleinfo id-pointer-sdk Common.KEY_ENCODING_SM2_PUB_KEY
SM2_PRIV_KEY = "SM2_PRIV_KEY"  # idem KEY_ENCODING_SM2_PRIV_KEY
ED25519_PUB_KEY = "ED25519_PUB_KEY"  # ours: neither HSJ nor the IDIS SDKs define one
ED25519_PRIV_KEY = "ED25519_PRIV_KEY"
MAX_SPKI = 1024  # an SM2 SubjectPublicKeyInfo is 91 bytes; refuse anything absurd

ENCRYPT_DES_ECB_PKCS5 = 0  # legacy, refused
ENCRYPT_NONE = 1
ENCRYPT_DES_CBC_PKCS5 = 2  # legacy, refused
ENCRYPT_PBKDF2_DESEDE_CBC_PKCS5 = 3  # read only
ENCRYPT_PBKDF2_AES_CBC_PKCS5 = 4
MAX_ENCRYPT = 9

PBKDF2_ITERATIONS = 10000  # what HSJ writes
MAX_PBKDF2_ITERATIONS = 1_000_000  # refuse a file that would pin the CPU for minutes
MIN_RSA_BITS = 1024
MIN_DSA_BITS = 1024
MIN_DH_BITS = 1024  # HSJ's clients generate 1024-bit groups (SessionSetupInfo)
_EMPTY_FIELD = b"\0\0\0\0"  # the empty field after HSJ's RSA_PUB_KEY

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA1": hashes.SHA1,
    "SHA-1": hashes.SHA1,
    "SHA256": hashes.SHA256,
    "SHA-256": hashes.SHA256,
}


# --- numbers ------------------------------------------------------------------------------


def java_bytes(n: int) -> bytes:
    """``BigInteger.toByteArray()`` for n >= 0: minimal two's complement, big-endian."""
    return n.to_bytes(n.bit_length() // 8 + 1, "big")


def _number(r: Reader, field: str) -> int:
    return int.from_bytes(r.bytes32(field), "big")


def _key_type(r: Reader, field: str) -> str:
    raw = r.bytes32(field)
    return raw.decode("utf-8", "replace")


def _key_end(r: Reader, field: str) -> None:
    """The end of a public key: nothing more, or HSJ's one empty trailing field."""
    if r.remaining == len(_EMPTY_FIELD):
        if r.raw(len(_EMPTY_FIELD), field) == _EMPTY_FIELD:
            return
        raise MalformedMessage(f"{len(_EMPTY_FIELD)} unexpected trailing bytes", field=field)
    r.expect_end(field)


# --- public keys: HS_PUBKEY ---------------------------------------------------------------


def _as_public(key: PublicKey | PrivateKey) -> PublicKey:
    if isinstance(key, _PRIVATE_TYPES):
        return key.public_key()
    if isinstance(key, _PUBLIC_TYPES):
        return key
    raise InvalidValue(f"unsupported key type {type(key).__name__}; RSA, DSA, SM2, Ed25519 only")


def encode_public_key(key: PublicKey | PrivateKey) -> bytes:
    """HS_PUBKEY data for a key of any type we sign with (a private key gives its public half)."""
    pub = _as_public(key)
    w = Writer()
    if isinstance(pub, SM2PublicKey):
        return w.utf8(SM2_PUB_KEY).u16(0).bytes32(pub.spki_der()).getvalue()
    if isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return w.utf8(ED25519_PUB_KEY).u16(0).bytes32(raw).getvalue()
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        w.utf8(RSA_PUB_KEY).u16(0).bytes32(java_bytes(nums.e)).bytes32(java_bytes(nums.n))
    else:
        nums = pub.public_numbers()
        par = nums.parameter_numbers
        w.utf8(DSA_PUB_KEY).u16(0)
        for value in (par.q, par.p, par.g, nums.y):
            w.bytes32(java_bytes(value))
    return w.getvalue()


def decode_public_key(data: bytes) -> PublicKey:
    """HS_PUBKEY data -> key object.

    Raises ``MalformedMessage`` for bytes that do not parse (truncated, trailing garbage other
    than HSJ's empty field) and ``InvalidValue`` for a well-formed record we will not use
    (unknown type, weak key, a Diffie-Hellman key).
    """
    r = Reader(data)
    ktype = _key_type(r, "pubkey.type")
    r.u16("pubkey.flags")
    if ktype == RSA_PUB_KEY:
        e = _number(r, "pubkey.e")
        n = _number(r, "pubkey.n")
        _key_end(r, "pubkey")
        return rsa_public_key(n, e)
    if ktype == DSA_PUB_KEY:
        q = _number(r, "pubkey.q")
        p = _number(r, "pubkey.p")
        g = _number(r, "pubkey.g")
        y = _number(r, "pubkey.y")
        _key_end(r, "pubkey")
        return dsa_public_key(p, q, g, y)
    if ktype == SM2_PUB_KEY:
        spki = r.bytes32("pubkey.spki")
        _key_end(r, "pubkey")
        if len(spki) > MAX_SPKI:
            raise InvalidValue("SM2 public key: SubjectPublicKeyInfo too long")
        return SM2PublicKey.from_spki_der(spki)
    if ktype == ED25519_PUB_KEY:
        raw = r.bytes32("pubkey.ed25519")
        _key_end(r, "pubkey")
        return ed25519_public_key(raw)
    if ktype == DH_PUB_KEY:
        raise InvalidValue("a DH_PUB_KEY exchanges a session key; it cannot verify a signature")
    raise InvalidValue(f"unsupported public key type {ktype!r}")


def ed25519_public_key(raw: bytes) -> ed25519.Ed25519PublicKey:
    if len(raw) != 32:
        raise InvalidValue(f"Ed25519 public key must be 32 bytes, got {len(raw)}")
    try:
        return ed25519.Ed25519PublicKey.from_public_bytes(bytes(raw))
    except ValueError as exc:
        raise InvalidValue(f"invalid Ed25519 public key: {exc}") from None


def rsa_public_key(n: int, e: int) -> rsa.RSAPublicKey:
    if n.bit_length() < MIN_RSA_BITS:
        raise InvalidValue(
            f"RSA key of {n.bit_length()} bits is too weak; at least {MIN_RSA_BITS} required"
        )
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidValue(f"invalid RSA public key: {exc}") from None


def dsa_public_key(p: int, q: int, g: int, y: int) -> dsa.DSAPublicKey:
    if p.bit_length() < MIN_DSA_BITS:
        raise InvalidValue(
            f"DSA key of {p.bit_length()} bits is too weak; at least {MIN_DSA_BITS} required"
        )
    try:
        return dsa.DSAPublicNumbers(y, dsa.DSAParameterNumbers(p, q, g)).public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidValue(f"invalid DSA public key: {exc}") from None


def encode_dh_public_key(key: dh.DHPublicKey) -> bytes:
    """DH_PUB_KEY bytes (HSJ ``Util.getBytesFromPublicKey`` of a ``DHPublicKey``): y, p, g."""
    nums = key.public_numbers()
    par = nums.parameter_numbers
    w = Writer().utf8(DH_PUB_KEY).u16(0)
    for value in (nums.y, par.p, par.g):
        w.bytes32(java_bytes(value))
    return w.getvalue()


def decode_dh_public_key(data: bytes) -> dh.DHPublicKey:
    """A Diffie-Hellman public key as HSJ writes it in a session setup (mode 4), with or
    without an empty trailing field; ``InvalidValue`` for another type or a weak group."""
    r = Reader(data)
    ktype = _key_type(r, "pubkey.type")
    r.u16("pubkey.flags")
    if ktype != DH_PUB_KEY:
        raise InvalidValue(f"expected a DH_PUB_KEY, got {ktype!r}")
    y = _number(r, "pubkey.y")
    p = _number(r, "pubkey.p")
    g = _number(r, "pubkey.g")
    _key_end(r, "pubkey")
    if p.bit_length() < MIN_DH_BITS:
        raise InvalidValue(
            f"DH group of {p.bit_length()} bits is too weak; at least {MIN_DH_BITS} required"
        )
    if not (1 < g < p - 1 and 1 < y < p - 1):
        raise InvalidValue("invalid DH public key: g and y must lie in 2..p-2")
    try:
        return dh.DHPublicNumbers(y, dh.DHParameterNumbers(p, g)).public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidValue(f"invalid DH public key: {exc}") from None


# --- private keys: HSJ bytes and key files ------------------------------------------------


def encode_private_key(key: PrivateKey) -> bytes:
    """HSJ private key bytes: ``RSA_PRIVCRT_KEY``, ``DSA_PRIV_KEY``, ``SM2_PRIV_KEY``, ..."""
    w = Writer()
    if isinstance(key, SM2PrivateKey):
        w.utf8(SM2_PRIV_KEY).bytes32(key.pkcs8_der())
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        w.utf8(ED25519_PRIV_KEY).bytes32(raw)
    elif isinstance(key, rsa.RSAPrivateKey):
        nums = key.private_numbers()
        pub = nums.public_numbers
        w.utf8(RSA_PRIVCRT_KEY)
        for value in (pub.n, pub.e, nums.d, nums.p, nums.q, nums.dmp1, nums.dmq1, nums.iqmp):
            w.bytes32(java_bytes(value))
    elif isinstance(key, dsa.DSAPrivateKey):
        nums = key.private_numbers()
        par = nums.public_numbers.parameter_numbers
        w.utf8(DSA_PRIV_KEY)
        for value in (nums.x, par.p, par.q, par.g):
            w.bytes32(java_bytes(value))
    else:
        raise InvalidValue(f"unsupported private key type {type(key).__name__}")
    return w.getvalue()


def decode_private_key(data: bytes) -> PrivateKey:
    r = Reader(data)
    ktype = _key_type(r, "privkey.type")
    try:
        if ktype == RSA_PRIVCRT_KEY:
            n, e, d, p, q, dmp1, dmq1, iqmp = (_number(r, f"privkey.{i}") for i in range(8))
            r.expect_end("privkey")
            _check_rsa_size(n)
            pub = rsa.RSAPublicNumbers(e, n)
            return rsa.RSAPrivateNumbers(p, q, d, dmp1, dmq1, iqmp, pub).private_key()
        if ktype == RSA_PRIV_KEY:
            n = _number(r, "privkey.n")
            d = _number(r, "privkey.d")
            r.expect_end("privkey")
            _check_rsa_size(n)
            return _rsa_from_n_d(n, d)
        if ktype == DSA_PRIV_KEY:
            x, p, q, g = (_number(r, f"privkey.{name}") for name in "xpqg")
            r.expect_end("privkey")
            if p.bit_length() < MIN_DSA_BITS:
                raise InvalidValue(f"DSA key of {p.bit_length()} bits is too weak")
            y = pow(g, x, p) if p > 1 else 0
            pub = dsa.DSAPublicNumbers(y, dsa.DSAParameterNumbers(p, q, g))
            return dsa.DSAPrivateNumbers(x, pub).private_key()
        if ktype == SM2_PRIV_KEY:
            der = r.bytes32("privkey.pkcs8")
            r.expect_end("privkey")
            return SM2PrivateKey.from_pkcs8_der(der)
        if ktype == ED25519_PRIV_KEY:
            seed = r.bytes32("privkey.ed25519")
            r.expect_end("privkey")
            if len(seed) != 32:
                raise InvalidValue(f"Ed25519 private key must be 32 bytes, got {len(seed)}")
            return ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidValue(f"invalid {ktype} private key: {exc}") from None
    raise InvalidValue(f"unsupported private key type {ktype!r}")


def _check_rsa_size(n: int) -> None:
    if n.bit_length() < MIN_RSA_BITS:
        raise InvalidValue(
            f"RSA key of {n.bit_length()} bits is too weak; at least {MIN_RSA_BITS} required"
        )


def _rsa_from_n_d(n: int, d: int) -> rsa.RSAPrivateKey:
    """RSA_PRIV_KEY stores no e and no primes; try the exponents anyone ever used."""
    for e in (65537, 3, 17, 5):
        try:
            p, q = rsa.rsa_recover_prime_factors(n, e, d)
        except ValueError:
            continue
        nums = rsa.RSAPrivateNumbers(
            p,
            q,
            d,
            rsa.rsa_crt_dmp1(d, p),
            rsa.rsa_crt_dmq1(d, q),
            rsa.rsa_crt_iqmp(p, q),
            rsa.RSAPublicNumbers(e, n),
        )
        return nums.private_key()
    raise InvalidValue("RSA_PRIV_KEY with an unusual public exponent cannot be used")


def _password(passphrase: bytes | str) -> bytes:
    """The bytes Java's PBKDF2WithHmacSHA1 actually hashes.

    HSJ turns each passphrase byte into a char (``b & 0xFF``) and the JCE encodes chars as
    UTF-8, so bytes above 0x7F become two bytes. ASCII passphrases are unchanged.
    """
    raw = passphrase.encode("utf-8") if isinstance(passphrase, str) else bytes(passphrase)
    return raw.decode("latin-1").encode("utf-8")


def _derive(passphrase: bytes | str, salt: bytes, iterations: int, bits: int) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA1(), length=bits // 8, salt=salt, iterations=iterations)
    return kdf.derive(_password(passphrase))


def encode_private_key_file(
    key: PrivateKey,
    passphrase: bytes | str | None = None,
    *,
    random_bytes: Random = ENTROPY,
) -> bytes:
    """The contents of an HSJ ``admpriv.bin``: unencrypted, or PBKDF2 + AES-128-CBC."""
    clear = encode_private_key(key)
    if passphrase is None:
        return Writer().u32(ENCRYPT_NONE).raw(clear).getvalue()
    salt, iv = random_bytes(16), random_bytes(16)
    secret = _derive(passphrase, salt, PBKDF2_ITERATIONS, 128)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(clear) + padder.finalize()
    enc = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    ciphertext = enc.update(padded) + enc.finalize()
    w = Writer().u32(ENCRYPT_PBKDF2_AES_CBC_PKCS5).bytes32(salt)
    w.u32(PBKDF2_ITERATIONS).u32(128).bytes32(iv).bytes32(ciphertext)
    return w.getvalue()


def is_private_key_file_encrypted(data: bytes) -> bool:
    r = Reader(data)
    kind = r.u32("keyfile.encryption")
    return kind <= MAX_ENCRYPT and kind != ENCRYPT_NONE


def decode_private_key_file(data: bytes, passphrase: bytes | str | None = None) -> PrivateKey:
    r = Reader(data)
    kind = r.u32("keyfile.encryption")
    if kind > MAX_ENCRYPT:
        return decode_private_key(data)
    if kind == ENCRYPT_NONE:
        return decode_private_key(r.rest())
    if kind not in (ENCRYPT_PBKDF2_AES_CBC_PKCS5, ENCRYPT_PBKDF2_DESEDE_CBC_PKCS5):
        raise InvalidValue(
            f"private key file uses legacy encryption type {kind}; re-encrypt it with a "
            "current Handle.Net tool"
        )
    salt = r.bytes32("keyfile.salt")
    iterations = r.u32("keyfile.iterations")
    bits = r.u32("keyfile.key_bits")
    iv = r.bytes32("keyfile.iv")
    ciphertext = r.bytes32("keyfile.ciphertext")
    r.expect_end("keyfile")
    if passphrase is None:
        raise InvalidValue("private key file is encrypted; a passphrase is needed")
    if not 1 <= iterations <= MAX_PBKDF2_ITERATIONS:
        raise InvalidValue(f"private key file asks for {iterations} PBKDF2 iterations")
    algorithm = _file_cipher(kind, bits, iv)
    secret = _derive(passphrase, salt, iterations, bits)
    try:
        dec = Cipher(algorithm(secret), modes.CBC(iv)).decryptor()
        padded = dec.update(ciphertext) + dec.finalize()
        unpadder = padding.PKCS7(len(iv) * 8).unpadder()
        clear = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise InvalidValue("cannot decrypt private key file: wrong passphrase?") from None
    try:
        return decode_private_key(clear)
    except IdnodeError:
        # garbage that happened to unpad: a wrong passphrase, not a corrupt message
        raise InvalidValue("cannot decrypt private key file: wrong passphrase?") from None


def _file_cipher(kind: int, bits: int, iv: bytes) -> Callable[[bytes], object]:
    if kind == ENCRYPT_PBKDF2_AES_CBC_PKCS5:
        if bits not in (128, 192, 256) or len(iv) != 16:
            raise InvalidValue(f"private key file: bad AES parameters ({bits} bits)")
        return algorithms.AES
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

    if bits != 192 or len(iv) != 8:
        raise InvalidValue(f"private key file: bad DESede parameters ({bits} bits)")
    return TripleDES


# --- our own files: PEM -------------------------------------------------------------------


def _check_private(key: object) -> PrivateKey:
    if not isinstance(key, _PRIVATE_TYPES):
        raise InvalidValue(
            f"unsupported private key type {type(key).__name__}; RSA, DSA, SM2, Ed25519 only"
        )
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise InvalidValue(f"RSA key of {key.key_size} bits is too weak")
    return key


def private_key_to_pem(key: PrivateKey, passphrase: bytes | str | None = None) -> bytes:
    """PKCS#8 PEM, encrypted with the library's best available scheme if a passphrase is set.

    SM2 keys are written by ``idnode.crypto.sm2`` (``cryptography`` cannot serialise them) and
    only without a passphrase; protect one with the HSJ key file form instead
    (``encode_private_key_file``), which encrypts any key type.
    """
    if isinstance(key, SM2PrivateKey):
        if passphrase:
            raise InvalidValue(
                "SM2 keys are not written as encrypted PEM; use the HSJ key file form "
                "(PBKDF2 + AES) to protect one with a passphrase"
            )
        return key.to_pem()
    if passphrase:
        pw = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
        enc: serialization.KeySerializationEncryption = serialization.BestAvailableEncryption(pw)
    else:
        enc = serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def private_key_from_pem(data: bytes, passphrase: bytes | str | None = None) -> PrivateKey:
    pw = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    if _is_sm2_pem(data):
        return sm2.private_key_from_pem(data)
    try:
        key = serialization.load_pem_private_key(data, password=pw or None)
    except TypeError as exc:  # encrypted without passphrase, or the reverse
        raise InvalidValue(f"private key PEM: {exc}") from None
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidValue(f"private key PEM cannot be loaded: {exc}") from None
    return _check_private(key)


def _is_sm2_pem(data: bytes) -> bool:
    """An unencrypted PEM whose DER names the SM2 curve (``cryptography`` would refuse it)."""
    try:
        body = b"".join(bytes(data).strip().splitlines()[1:-1])
        return b"ENCRYPTED" not in bytes(data)[:40] and sm2.is_sm2_der(base64.b64decode(body))
    except (binascii.Error, ValueError):
        return False


def public_key_to_pem(key: PublicKey | PrivateKey) -> bytes:
    pub = _as_public(key)
    if isinstance(pub, SM2PublicKey):
        return pub.to_pem()
    return pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_key_from_pem(data: bytes | str) -> PublicKey:
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    if _is_sm2_pem(raw):
        return sm2.public_key_from_pem(raw)
    try:
        key = serialization.load_pem_public_key(raw)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidValue(f"public key PEM cannot be loaded: {exc}") from None
    pub = _as_public(key)  # type: ignore[arg-type]
    if isinstance(pub, rsa.RSAPublicKey):
        _check_rsa_size(pub.public_numbers().n)
    return pub


# the names the rest of the node calls them by (``idnode init``, ``serve``)
save_private_key_pem = private_key_to_pem
load_private_key_pem = private_key_from_pem
save_public_key_pem = public_key_to_pem
load_public_key_pem = public_key_from_pem


# --- generation, signing ------------------------------------------------------------------


def generate_key(alg: str = "rsa", bits: int = 2048) -> PrivateKey:
    """A new key: ``rsa`` / ``dsa`` of ``bits``; ``sm2`` (sm2p256v1) and ``ed25519`` ignore it."""
    alg = alg.lower()
    if alg == "sm2":
        return SM2PrivateKey.generate()
    if alg == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "rsa":
        if bits < MIN_RSA_BITS:
            raise InvalidValue(f"RSA keys need at least {MIN_RSA_BITS} bits")
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if alg == "dsa":
        if bits not in (1024, 2048, 3072, 4096):
            raise InvalidValue("DSA keys are 1024, 2048, 3072 or 4096 bits")
        return dsa.generate_private_key(key_size=bits)
    raise InvalidValue(f"unknown key algorithm {alg!r}; use rsa, dsa, sm2 or ed25519")


def hash_algorithm(hash_name: str) -> hashes.HashAlgorithm:
    """``SHA1``/``SHA-1``/``SHA256``/``SHA-256`` (any case) -> hash object."""
    cls = _HASHES.get(hash_name.upper()) if isinstance(hash_name, str) else None
    if cls is None:
        raise InvalidValue(f"unsupported hash algorithm {hash_name!r}; use SHA1 or SHA256")
    return cls()


def key_algorithm(key: PublicKey | PrivateKey) -> str:
    """``RSA``, ``DSA``, ``SM2`` or ``Ed25519``: the suffix of Java's signature names."""
    pub = _as_public(key)
    if isinstance(pub, SM2PublicKey):
        return "SM2"
    if isinstance(pub, ed25519.Ed25519PublicKey):
        return "Ed25519"
    return "RSA" if isinstance(pub, rsa.RSAPublicKey) else "DSA"


def default_hash(key: PublicKey | PrivateKey) -> str:
    """The hash id to write next to a signature by ``key``: ``SM3`` for SM2 (as the Teleinfo
    SDK's ``Common.HASH_ALG_SM3``), ``Ed25519`` for Ed25519 (ours), ``SHA-256`` otherwise."""
    alg = key_algorithm(key)
    return {"SM2": "SM3", "Ed25519": "Ed25519"}.get(alg, "SHA-256")


def signature_algorithm(key: PublicKey | PrivateKey, hash_name: str) -> str:
    """Java's name for the signature, e.g. ``SHA256withRSA``, ``SM3withSM2``, ``Ed25519``."""
    alg = key_algorithm(key)
    if alg == "SM2":
        return "SM3withSM2"
    if alg == "Ed25519":
        return "Ed25519"
    short = "SHA1" if isinstance(hash_algorithm(hash_name), hashes.SHA1) else "SHA256"
    return f"{short}with{alg}"


def sign(private_key: PrivateKey, data: bytes, hash_name: str = "SHA256") -> bytes:
    """RSA PKCS#1 v1.5 or DSA (DER ``r, s``) over ``data``, as Java's ``Signature`` does;
    SM3withSM2 for SM2 and pure Ed25519 whatever ``hash_name`` says (see module notes)."""
    if isinstance(private_key, SM2PrivateKey):
        return private_key.sign(data)
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(bytes(data))
    algo = hash_algorithm(hash_name)
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, PKCS1v15(), algo)
    if isinstance(private_key, dsa.DSAPrivateKey):
        return private_key.sign(data, algo)
    raise InvalidValue(f"unsupported private key type {type(private_key).__name__}")


def verify(public_key: PublicKey, signature: bytes, data: bytes, hash_name: str = "SHA256") -> bool:
    """True when ``signature`` is valid; False for any bad or malformed signature."""
    if isinstance(public_key, SM2PublicKey):
        return public_key.verify(signature, data)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        try:
            public_key.verify(bytes(signature), bytes(data))
        except InvalidSignature:
            return False
        return True
    algo = hash_algorithm(hash_name)
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, PKCS1v15(), algo)
        elif isinstance(public_key, dsa.DSAPublicKey):
            public_key.verify(signature, data, algo)
        else:
            raise InvalidValue(f"unsupported public key type {type(public_key).__name__}")
    except InvalidSignature:
        return False
    return True


# --- REST/JSON form of a public key (HSJ GsonUtility: JWK-like) ---------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode_any(text: object, field: str) -> bytes:
    """Base64 in either alphabet, padded or not, as Apache commons-codec accepts it."""
    if not isinstance(text, str):
        raise InvalidValue(f"{field}: must be a base64 string")
    cleaned = "".join(text.split()).rstrip("=").replace("-", "+").replace("_", "/")
    if len(cleaned) % 4 == 1:
        raise InvalidValue(f"{field}: invalid base64 length")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValue(f"{field}: invalid base64") from None


def _unsigned_bytes(n: int) -> bytes:
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")


def public_key_to_jwk(key: PublicKey | PrivateKey) -> dict:
    """``{"kty": "RSA", "n", "e"}`` or ``{"kty": "DSA", "y", "p", "q", "g"}``, base64url;
    Ed25519 as RFC 8037 ``{"kty": "OKP", "crv": "Ed25519", "x"}`` and SM2 as
    ``{"kty": "EC", "crv": "SM2", "x", "y"}`` (no standard names one; HSJ knows neither)."""
    pub = _as_public(key)
    if isinstance(pub, SM2PublicKey):
        n = pub.curve.size
        return {
            "kty": "EC",
            "crv": "SM2",
            "x": b64url(pub.x.to_bytes(n, "big")),
            "y": b64url(pub.y.to_bytes(n, "big")),
        }
    if isinstance(pub, ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    if isinstance(pub, rsa.RSAPublicKey):
        nums = pub.public_numbers()
        return {
            "kty": "RSA",
            "n": b64url(_unsigned_bytes(nums.n)),
            "e": b64url(_unsigned_bytes(nums.e)),
        }
    nums = pub.public_numbers()
    par = nums.parameter_numbers
    return {
        "kty": "DSA",
        "y": b64url(_unsigned_bytes(nums.y)),
        "p": b64url(_unsigned_bytes(par.p)),
        "q": b64url(_unsigned_bytes(par.q)),
        "g": b64url(_unsigned_bytes(par.g)),
    }


def public_key_from_jwk(obj: object, field: str = "key") -> PublicKey:
    if not isinstance(obj, dict):
        raise InvalidValue(f"{field}: must be an object with kty")
    kty = obj.get("kty")

    def num(name: str) -> int:
        return int.from_bytes(b64decode_any(obj.get(name), f"{field}.{name}"), "big")

    if isinstance(kty, str) and kty.upper() == "RSA":
        return rsa_public_key(num("n"), num("e"))
    if isinstance(kty, str) and kty.upper() == "DSA":
        return dsa_public_key(num("p"), num("q"), num("g"), num("y"))
    crv = obj.get("crv")
    if kty == "OKP" and crv == "Ed25519":
        return ed25519_public_key(b64decode_any(obj.get("x"), f"{field}.x"))
    if kty == "EC" and crv == "SM2":
        return SM2PublicKey(num("x"), num("y"))
    if kty == "EC":  # named by .kty like any other refusal, the curve in the message
        raise InvalidValue(f"{field}.kty: EC key on curve {crv!r}; only crv SM2 is supported")
    raise InvalidValue(f"{field}.kty: unsupported key type {kty!r}")
