"""Challenge answers, byte for byte as the Handle.Net software (HSJ) makes and checks them.

The signed data is always the server's nonce followed by the bare request digest (no
algorithm byte): ``nonce || digest`` (RFC 3652 section 3.5; HSJ ``ChallengeResponse``).
For the REST session API the client nonce takes the digest's place (see ``idnode.auth.rest``).

HS_SECKEY answers (HSJ ``SecretKeyAuthenticationInfo.authenticate``, ``Util.doMac``)::

    code (1 byte) || mac          protocol 2.1 and later
    mac                           protocol 2.0 ("old format"): MD5, no code byte

    code  name               mac
    0x00  MD5 (old format)   MD5(secret || nonce || digest || secret)
    0x01  MD5                MD5(secret || nonce || digest || secret)
    0x02  SHA1               SHA-1(secret || nonce || digest || secret)     HSJ 2.1 .. 2.6
    0x03  SHA256             SHA-256(secret || nonce || digest || secret)
    0x04  SM3                SM3(secret || nonce || digest || secret)         ours
    0x12  HMAC-SHA1          HMAC-SHA1(key=secret, nonce || digest)
    0x13  HMAC-SHA256        HMAC-SHA256(key=secret, nonce || digest)
    0x14  HMAC-SM3           HMAC-SM3(key=secret, nonce || digest)            ours
    0x22  PBKDF2-HMAC-SHA1   salt (4-byte length + bytes) || iterations (4) || key bits (4)
                             || mac (4-byte length + bytes), where
                             mac = HMAC-SHA1(key=PBKDF2-SHA1(secret, salt, iterations, bits),
                                             nonce || digest)                 HSJ 2.7+

0x04 and 0x14 are ours: neither HSJ nor the Teleinfo IDIS SDK (which names SM3 only as a
signature hash) numbers an SM3 MAC, so they follow HSJ's pattern (0x0N a digest, 0x1N its
HMAC); an HSJ server answers them "unknown", which is the honest failure.

HSJ clients pick 0x22 (16-byte random salt, 10000 iterations, 160 bits) when both sides
speak 2.7+, SHA1 for 2.1 to 2.6 and the old format below 2.1. A server verifies a 0x22
answer by recomputing it with the salt, iterations and length the answer carries.

HS_PUBKEY answers (HSJ ``PublicKeyAuthenticationInfo``, ``HandleServer.verifyIdentity``)::

    hash id (4-byte length + ASCII) || signature (4-byte length + bytes)

with the signature over ``nonce || digest``. HSJ writes the hash id ``SHA1`` or ``SHA-256``
(``Common.HASH_ALG_*``) and reads also ``SHA-1``, ``SHA256`` and the one-byte codes 2 / 3.
The key type comes from the HS_PUBKEY value: SHA1withRSA, SHA256withRSA (PKCS#1 v1.5),
SHA1withDSA, SHA256withDSA (DER r, s). HSJ signs with SHA256 from protocol 2.7, except
DSA, which stays SHA1 below 2.11. MD5 signatures are refused. SM2 keys answer with hash id
``SM3`` (the Teleinfo SDK's ``Common.HASH_ALG_SM3``) and an SM3withSM2 signature (DER r, s,
default user id); Ed25519 keys with hash id ``Ed25519`` (ours) and a pure Ed25519 signature.
For those two key types only their own hash id is accepted. An SM2 answer is also accepted
in the IDIS SDK's form: SM3withSM2 over ``SM3(nonce || digest)`` with the signer's handle as
the SM2 user id (``verify_idis_sm2``; docs/crypto.md).

Verification never raises for a bad or malformed *answer* (it returns False: the client gets
AUTHENTICATION_FAILED); it raises ``UnableToAuthenticate`` when the *stored* key cannot be
used. All comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection
from enum import IntEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from idnode.auth.secrets import (
    HSJ_ANSWER_ITERATIONS,
    is_hashed,
    parse_hashed,
    pbkdf2,
)
from idnode.crypto.keys import (
    PrivateKey,
    decode_public_key,
    default_hash,
    key_algorithm,
    sign,
    verify,
)
from idnode.crypto.sm2 import SM2PrivateKey, SM2PublicKey, sm3
from idnode.encoding import Reader, Writer
from idnode.errors import IdnodeError, InvalidValue, UnableToAuthenticate
from idnode.runtime import ENTROPY, Random
from idnode.wire.bodies import RequestDigest

MAX_ANSWER_ITERATIONS = 100_000  # a client-chosen PBKDF2 cost; HSJ sends 10000
MAX_ANSWER_SALT = 64
MAX_ANSWER_KEY_BITS = 1024


class MacCode(IntEnum):
    """HS_SECKEY answer codes (HSJ ``Common.HASH_CODE_*``)."""

    MD5_OLD_FORMAT = 0x00
    MD5 = 0x01
    SHA1 = 0x02
    SHA256 = 0x03
    SM3 = 0x04  # ours
    HMAC_SHA1 = 0x12
    HMAC_SHA256 = 0x13
    HMAC_SM3 = 0x14  # ours
    PBKDF2_HMAC_SHA1 = 0x22


# names as HSJ's REST API and our callers spell them (compared ignoring case and punctuation)
_MAC_NAMES = {
    "MD5OLD": MacCode.MD5_OLD_FORMAT,
    "MD5OLDFORMAT": MacCode.MD5_OLD_FORMAT,
    "MD5": MacCode.MD5,
    "SHA": MacCode.SHA1,
    "SHA1": MacCode.SHA1,
    "SHA2": MacCode.SHA256,
    "SHA256": MacCode.SHA256,
    "HMACSHA1": MacCode.HMAC_SHA1,
    "HMACSHA256": MacCode.HMAC_SHA256,
    "SM3": MacCode.SM3,
    "HMACSM3": MacCode.HMAC_SM3,
    "PBKDF2": MacCode.PBKDF2_HMAC_SHA1,
    "PBKDF2HMACSHA1": MacCode.PBKDF2_HMAC_SHA1,
    "PBKDF2WITHHMACSHA1": MacCode.PBKDF2_HMAC_SHA1,
}

# public-key hash ids: what HSJ writes, and everything ``Util.getSigIdFromHashAlgId`` reads
HASH_ID_SHA1 = b"SHA1"
HASH_ID_SHA256 = b"SHA-256"
_SIG_HASHES = {
    b"SHA1": "SHA1",
    b"SHA-1": "SHA1",
    b"SHA-256": "SHA256",
    b"SHA256": "SHA256",
    bytes([MacCode.SHA1]): "SHA1",
    bytes([MacCode.SHA256]): "SHA256",
}
HASH_ID_SM3 = b"SM3"  # Teleinfo id-pointer-sdk Common.HASH_ALG_SM3
HASH_ID_ED25519 = b"Ed25519"  # ours
_FIXED_HASH_IDS = {"SM2": (HASH_ID_SM3,), "Ed25519": (HASH_ID_ED25519,)}


def mac_code(alg: str | int) -> MacCode:
    """``"SHA-256"``, ``"hmac-sha256"``, ``"PBKDF2WithHmacSHA1"``, 0x13, ... -> MacCode."""
    if isinstance(alg, int) and not isinstance(alg, bool):
        try:
            return MacCode(alg)
        except ValueError:
            raise InvalidValue(f"unknown secret key answer code {alg:#x}") from None
    if not isinstance(alg, str):
        raise InvalidValue(f"unknown secret key algorithm {alg!r}")
    squeezed = "".join(c for c in alg.upper() if c.isalnum())
    try:
        return _MAC_NAMES[squeezed]
    except KeyError:
        raise InvalidValue(f"unknown secret key algorithm {alg!r}") from None


def digest_bytes(request_digest: RequestDigest | bytes) -> bytes:
    """The digest as signed: bare bytes, without the algorithm id."""
    if isinstance(request_digest, RequestDigest):
        return request_digest.digest
    return bytes(request_digest)


# --------------------------------------------------------------------------- secret keys


def pbkdf2_encoding(salt: bytes, iterations: int, key_bits: int, mac: bytes) -> bytes:
    """HSJ ``Util.constructPbkdf2Encoding``: the body of a 0x22 answer."""
    return Writer().bytes32(salt).u32(iterations).u32(key_bits).bytes32(mac).getvalue()


def parse_pbkdf2_encoding(body: bytes) -> tuple[bytes, int, int, bytes]:
    """(salt, iterations, key bits, mac) of a 0x22 answer body; MalformedMessage if broken."""
    r = Reader(body)
    salt = r.bytes32("pbkdf2.salt")
    iterations = r.u32("pbkdf2.iterations")
    key_bits = r.u32("pbkdf2.key_bits")
    mac = r.bytes32("pbkdf2.mac")
    r.expect_end("pbkdf2")
    return salt, iterations, key_bits, mac


def compute_mac(code: MacCode, data: bytes, key: bytes) -> bytes:
    """HSJ ``Util.doMac`` for every code but PBKDF2 (see ``make_secret_key_answer``)."""
    if code in (MacCode.MD5, MacCode.MD5_OLD_FORMAT):
        return hashlib.md5(key + data + key).digest()
    if code == MacCode.SHA1:
        return hashlib.sha1(key + data + key).digest()
    if code == MacCode.SHA256:
        return hashlib.sha256(key + data + key).digest()
    if code == MacCode.HMAC_SHA1:
        return hmac.new(key, data, hashlib.sha1).digest()
    if code == MacCode.HMAC_SHA256:
        return hmac.new(key, data, hashlib.sha256).digest()
    if code == MacCode.SM3:
        return sm3(key, data, key)
    if code == MacCode.HMAC_SM3:
        mac = crypto_hmac.HMAC(key, hashes.SM3())
        mac.update(data)
        return mac.finalize()
    raise InvalidValue(f"compute_mac does not do {code.name}")


def _pbkdf2_mac(secret: bytes, salt: bytes, iterations: int, key_bits: int, data: bytes) -> bytes:
    derived = pbkdf2("sha1", secret, salt, iterations, key_bits)
    return hmac.new(derived, data, hashlib.sha1).digest()


def make_secret_key_answer(
    secret: bytes | str,
    nonce: bytes,
    request_digest: RequestDigest | bytes,
    alg: str | int = MacCode.PBKDF2_HMAC_SHA1,
    *,
    salt: bytes | None = None,
    iterations: int = HSJ_ANSWER_ITERATIONS,
    key_bits: int = 160,
    random_bytes: Random = ENTROPY,
) -> bytes:
    """A client's HS_SECKEY answer, exactly as HSJ builds it.

    ``secret`` is the key as the client holds it (for HSJ's hashed form, the hex SHA-1).
    For PBKDF2 a missing ``salt`` is 16 random bytes, as HSJ does; pass the stored salt and
    iterations to answer a server that keeps the key in our PBKDF2 form. The old format
    (``MD5_OLD_FORMAT``) is the bare MD5 digest, no code byte.
    """
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    code = mac_code(alg)
    data = bytes(nonce) + digest_bytes(request_digest)
    if code == MacCode.PBKDF2_HMAC_SHA1:
        salt = bytes(random_bytes(16)) if salt is None else bytes(salt)
        mac = _pbkdf2_mac(key, salt, iterations, key_bits, data)
        return bytes([code]) + pbkdf2_encoding(salt, iterations, key_bits, mac)
    mac = compute_mac(code, data, key)
    if code == MacCode.MD5_OLD_FORMAT:
        return mac
    return bytes([code]) + mac


def verify_secret_key_answer(
    stored_seckey_data: bytes,
    nonce: bytes,
    request_digest: RequestDigest | bytes,
    answer: bytes,
    *,
    old_format: bool = False,
    accept: Collection[int] | None = None,
) -> bool:
    """Does ``answer`` prove knowledge of the secret behind this HS_SECKEY value?

    ``old_format`` is for answers in protocol 2.0 messages (bare MD5, no code byte; HSJ
    decides it by the message version). ``accept`` optionally narrows the codes allowed
    (e.g. a policy refusing MD5); by default every code HSJ accepts is. Stored data in our
    PBKDF2 form verifies only 0x22 answers made with the stored parameters (see
    ``idnode.auth.secrets``).
    """
    stored = bytes(stored_seckey_data)
    answer = bytes(answer)
    data = bytes(nonce) + digest_bytes(request_digest)
    if old_format:
        code, body = MacCode.MD5_OLD_FORMAT, answer
    else:
        if len(answer) < 2:
            return False
        try:
            code = MacCode(answer[0])
        except ValueError:
            return False
        body = answer[1:]
    if accept is not None and code not in accept:
        return False
    if is_hashed(stored):
        return _verify_against_hashed(stored, code, body, data)
    if not stored:
        return False
    if code == MacCode.PBKDF2_HMAC_SHA1:
        return _verify_pbkdf2_answer(stored, body, data)
    return hmac.compare_digest(compute_mac(code, data, stored), body)


def _verify_pbkdf2_answer(secret: bytes, body: bytes, data: bytes) -> bool:
    try:
        salt, iterations, key_bits, mac = parse_pbkdf2_encoding(body)
    except IdnodeError:
        return False
    if not (
        1 <= iterations <= MAX_ANSWER_ITERATIONS
        and 0 < key_bits <= MAX_ANSWER_KEY_BITS
        and key_bits % 8 == 0
        and len(salt) <= MAX_ANSWER_SALT
    ):
        return False  # refuse to spend unbounded CPU on a client's say-so
    expected = _pbkdf2_mac(secret, salt, iterations, key_bits, data)
    return hmac.compare_digest(expected, mac)


def _verify_against_hashed(stored: bytes, code: MacCode, body: bytes, data: bytes) -> bool:
    h = parse_hashed(stored)
    if code != MacCode.PBKDF2_HMAC_SHA1 or h.hash_name != "sha1":
        return False  # every other answer needs the secret itself
    try:
        salt, iterations, key_bits, mac = parse_pbkdf2_encoding(body)
    except IdnodeError:
        return False
    same_params = (
        hmac.compare_digest(salt, h.salt) and iterations == h.iterations and key_bits == h.key_bits
    )
    expected = hmac.new(h.derived_key, data, hashlib.sha1).digest()
    return hmac.compare_digest(expected, mac) and same_params


# --------------------------------------------------------------------------- public keys


def make_public_key_answer(
    private_key: PrivateKey,
    nonce: bytes,
    request_digest: RequestDigest | bytes,
    hash_name: str = "SHA256",
) -> bytes:
    """A client's HS_PUBKEY answer: hash id then signature over ``nonce || digest``.

    SM2 and Ed25519 keys ignore ``hash_name``: their algorithm fixes the hash id.
    """
    data = bytes(nonce) + digest_bytes(request_digest)
    if key_algorithm(private_key) in _FIXED_HASH_IDS:
        hash_id = default_hash(private_key).encode("ascii")
        return Writer().bytes32(hash_id).bytes32(sign(private_key, data)).getvalue()
    short = _hash_short(hash_name)
    signature = sign(private_key, data, short)
    hash_id = HASH_ID_SHA1 if short == "SHA1" else HASH_ID_SHA256
    return Writer().bytes32(hash_id).bytes32(signature).getvalue()


def parse_public_key_answer(answer: bytes) -> tuple[bytes, bytes]:
    """(hash id, signature); trailing bytes are ignored, as HSJ ignores them."""
    r = Reader(bytes(answer))
    return r.bytes32("answer.hash_id"), r.bytes32("answer.signature")


def verify_public_key_answer(
    pubkey_data: bytes,
    nonce: bytes,
    request_digest: RequestDigest | bytes,
    answer: bytes,
    *,
    signer_handle: str | None = None,
) -> bool:
    """Is ``answer`` a valid signature by the key in this HS_PUBKEY value?

    ``signer_handle``: the handle the answer names as its key's (``ChallengeAnswerRequest``).
    With it, an SM2 answer may also be in the IDIS SDK's form (``verify_idis_sm2``).

    Raises ``UnableToAuthenticate`` when the stored key cannot be decoded or is refused
    (unknown type, too weak); a bad answer only returns False.
    """
    try:
        public_key = decode_public_key(bytes(pubkey_data))
    except IdnodeError as exc:
        raise UnableToAuthenticate(f"stored HS_PUBKEY cannot be used: {exc.message}") from None
    try:
        hash_id, signature = parse_public_key_answer(answer)
    except IdnodeError:
        return False
    data = bytes(nonce) + digest_bytes(request_digest)
    fixed = _FIXED_HASH_IDS.get(key_algorithm(public_key))
    if fixed is not None:
        if hash_id not in fixed:
            return False
        if verify(public_key, signature, data):
            return True
        return (
            signer_handle is not None
            and isinstance(public_key, SM2PublicKey)
            and verify_idis_sm2(public_key, signature, data, signer_handle)
        )
    short = _SIG_HASHES.get(hash_id) or _SIG_HASHES.get(hash_id.upper())
    if short is None:
        return False  # MD5withRSA and unknown hashes are refused
    return verify(public_key, signature, data, short)


def idis_sm2_signed(nonce: bytes, request_digest: RequestDigest | bytes) -> bytes:
    """The message the IDIS SDK signs with SM2: ``SM3(nonce || digest)``, 32 bytes."""
    return sm3(bytes(nonce), digest_bytes(request_digest))


def verify_idis_sm2(public_key: SM2PublicKey, signature: bytes, data: bytes, handle: str) -> bool:
    """The Teleinfo SDK's SM2 answer (``PublicKeyAuthenticationInfo.authenticate``, through
    hutool ``SM2.signHex``): the signed message is ``SM3(nonce || digest)`` and the SM2 user
    id is the signer's handle in UTF-8, where GM/T 0009 (and idnode's own answers) sign
    ``nonce || digest`` under the default id ``1234567812345678``."""
    try:
        user_id = handle.encode("utf-8")
        return public_key.verify(signature, sm3(bytes(data)), user_id=user_id)
    except IdnodeError:  # a handle too long to be an SM2 user id
        return False


def make_idis_sm2_answer(
    private_key: SM2PrivateKey, handle: str, nonce: bytes, request_digest: RequestDigest | bytes
) -> bytes:
    """An HS_PUBKEY answer in the IDIS SDK's SM2 form (see ``verify_idis_sm2``)."""
    signed = idis_sm2_signed(nonce, request_digest)
    signature = private_key.sign(signed, user_id=handle.encode("utf-8"))
    return Writer().bytes32(HASH_ID_SM3).bytes32(signature).getvalue()


def _hash_short(hash_name: str) -> str:
    squeezed = "".join(c for c in str(hash_name).upper() if c.isalnum())
    if squeezed in ("SHA1", "SHA"):
        return "SHA1"
    if squeezed in ("SHA256", "SHA2"):
        return "SHA256"
    raise InvalidValue(f"unsupported signature hash {hash_name!r}; use SHA1 or SHA256")
