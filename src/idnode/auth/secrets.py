"""HS_SECKEY data at rest: the raw secret, HSJ's hex SHA-1 form, or our PBKDF2 form.

Three stored forms, and what each lets a client do:

``raw``
    The secret's bytes (HSJ's default). Every answer kind verifies: the MD5 / SHA-1 /
    SHA-256 envelope digests, HMAC-SHA1/SHA256, and HSJ's PBKDF2-HMAC-SHA1 answer with a
    client-chosen salt -- all of them need the secret itself.

``SHA1-HEX`` (HSJ's hashed form)
    The 40-character lowercase hex SHA-1 of the secret, written by HSJ's
    ``Encoder.encodeSecretKey(secret, true)``. To the protocol this hex string simply *is*
    the secret: an HSJ client built with ``hash=true`` answers with it as the key, so every
    answer kind still works. It only keeps the original password out of the store.

``$pbkdf2-sha1$i=<iterations>,l=<bits>$<salt>$<key>`` (ours; also ``$pbkdf2-sha256$``)
    A derived key ``PBKDF2(secret, salt, iterations)`` (salt and key in unpadded base64).
    The server never holds anything that answers a challenge by itself. What still verifies:

    * HTTP Basic (``verify_plain_secret``): the presented secret is derived and compared;
    * a PBKDF2-HMAC-SHA1 challenge answer (code 0x22) whose salt, iterations and length
      equal the stored ones -- that answer is HMAC-SHA1 keyed by exactly the derived key, so
      a client that knows the stored parameters can authenticate over the native protocol
      and the REST session API. An HSJ client picks a random salt, so it cannot; digest and
      plain HMAC answers cannot either (they need the secret). Only the SHA-1 variant can
      answer challenges at all; ``pbkdf2-sha256`` is for Basic authentication only.

PBKDF2 passwords follow Java's ``PBKDF2WithHmacSHA1`` as HSJ feeds it (each byte becomes a
char, chars are hashed as UTF-8), so derived keys equal HSJ's for any secret bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

from idnode.errors import InvalidValue, UnableToAuthenticate
from idnode.runtime import ENTROPY, Random

PBKDF2_SHA1 = "PBKDF2-HMAC-SHA1"
PBKDF2_SHA256 = "PBKDF2-HMAC-SHA256"
SHA1_HEX = "SHA1-HEX"

DEFAULT_ITERATIONS = 100_000
HSJ_ANSWER_ITERATIONS = 10_000  # what HSJ clients put in a PBKDF2 answer
MAX_STORED_ITERATIONS = 1_000_000  # a handle admin must not be able to pin the CPU
MIN_SALT = 8
MAX_SALT = 64
MAX_KEY_BITS = 512

_KDF_HASH = {PBKDF2_SHA1: "sha1", PBKDF2_SHA256: "sha256"}
_KDF_BITS = {PBKDF2_SHA1: 160, PBKDF2_SHA256: 256}
_MARK = {"sha1": b"$pbkdf2-sha1$", "sha256": b"$pbkdf2-sha256$"}
_HASHED_RE = re.compile(
    rb"\$pbkdf2-(sha1|sha256)\$i=([1-9][0-9]{0,6}),l=([1-9][0-9]{0,3})"
    rb"\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)"
)
_HEX40 = re.compile(rb"[0-9a-f]{40}")


@dataclass(frozen=True, slots=True)
class HashedSecret:
    """A parsed ``$pbkdf2-...$`` value: hash name, iterations, salt and the derived key."""

    hash_name: str  # "sha1" | "sha256"
    iterations: int
    salt: bytes
    derived_key: bytes

    @property
    def key_bits(self) -> int:
        return len(self.derived_key) * 8


def java_password(secret: bytes) -> bytes:
    """The bytes Java's PBKDF2 really hashes for HSJ's ``(char) (b & 0xFF)`` password."""
    return bytes(secret).decode("latin-1").encode("utf-8")


def pbkdf2(hash_name: str, secret: bytes, salt: bytes, iterations: int, key_bits: int) -> bytes:
    """PBKDF2 as HSJ's ``Util.doPBKDF2`` computes it (key length in bits, whole bytes only)."""
    if key_bits <= 0 or key_bits % 8:
        raise InvalidValue(f"PBKDF2 key length must be a positive multiple of 8, got {key_bits}")
    return hashlib.pbkdf2_hmac(
        hash_name, java_password(secret), bytes(salt), iterations, key_bits // 8
    )


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _unb64(data: bytes) -> bytes:
    return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)


def hash_secret(
    secret: bytes | str,
    alg: str = PBKDF2_SHA1,
    iterations: int = DEFAULT_ITERATIONS,
    salt: bytes | None = None,
    *,
    key_bits: int | None = None,
    random_bytes: Random = ENTROPY,
) -> bytes:
    """HS_SECKEY data that does not hold ``secret`` itself.

    ``alg`` is ``PBKDF2-HMAC-SHA1`` (default; can still answer PBKDF2 challenges, see the
    module notes), ``PBKDF2-HMAC-SHA256`` (Basic authentication only) or ``SHA1-HEX`` (HSJ's
    hashed form; ``iterations`` and ``salt`` are ignored). A missing salt is 16 random bytes.
    """
    raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    name = alg.upper()
    if name == SHA1_HEX:
        return hashlib.sha1(raw).hexdigest().encode("ascii")
    if name not in _KDF_HASH:
        raise InvalidValue(f"unknown secret hashing {alg!r}; use {PBKDF2_SHA1}, {PBKDF2_SHA256}")
    if not 1 <= iterations <= MAX_STORED_ITERATIONS:
        raise InvalidValue(f"iterations must be 1..{MAX_STORED_ITERATIONS}")
    salt = bytes(random_bytes(16)) if salt is None else bytes(salt)
    if not MIN_SALT <= len(salt) <= MAX_SALT:
        raise InvalidValue(f"salt must be {MIN_SALT}..{MAX_SALT} bytes")
    bits = key_bits or _KDF_BITS[name]
    if not 64 <= bits <= MAX_KEY_BITS or bits % 8:
        raise InvalidValue(f"key length must be a multiple of 8 in 64..{MAX_KEY_BITS} bits")
    hash_name = _KDF_HASH[name]
    dk = pbkdf2(hash_name, raw, salt, iterations, bits)
    head = _MARK[hash_name] + b"i=%d,l=%d$" % (iterations, bits)
    return head + _b64(salt) + b"$" + _b64(dk)


def is_hashed(data: bytes) -> bool:
    """Whether HS_SECKEY data is our PBKDF2 form (HSJ's hex form is not told apart: to the
    protocol it is an ordinary secret)."""
    return bytes(data[:15]).startswith((_MARK["sha1"], _MARK["sha256"]))


def parse_hashed(data: bytes) -> HashedSecret:
    """Parse the ``$pbkdf2-...$`` form; raises ``UnableToAuthenticate`` when damaged."""
    m = _HASHED_RE.fullmatch(bytes(data))
    if m is None:
        raise UnableToAuthenticate("stored HS_SECKEY has a damaged PBKDF2 form")
    hash_name, iterations, bits = m.group(1).decode(), int(m.group(2)), int(m.group(3))
    try:
        salt, dk = _unb64(m.group(4)), _unb64(m.group(5))
    except (binascii.Error, ValueError):
        raise UnableToAuthenticate("stored HS_SECKEY has damaged base64") from None
    if iterations > MAX_STORED_ITERATIONS or len(dk) * 8 != bits or not dk:
        raise UnableToAuthenticate("stored HS_SECKEY has inconsistent PBKDF2 parameters")
    if not MIN_SALT <= len(salt) <= MAX_SALT:
        raise UnableToAuthenticate("stored HS_SECKEY has a bad salt length")
    return HashedSecret(hash_name, iterations, salt, dk)


def verify_plain_secret(stored_seckey_data: bytes, presented_secret: bytes) -> bool:
    """HTTP Basic: is ``presented_secret`` the secret behind this HS_SECKEY value?

    Raw data must equal the presented bytes. Raw data that is HSJ's lowercase hex SHA-1 form
    also accepts the password it was made from (a preimage of SHA-1 is out of reach, so this
    cannot let in anyone who does not know a secret). PBKDF2 data is derived and compared.
    Every comparison is constant-time.
    """
    stored = bytes(stored_seckey_data)
    presented = bytes(presented_secret)
    if is_hashed(stored):
        h = parse_hashed(stored)
        derived = pbkdf2(h.hash_name, presented, h.salt, h.iterations, h.key_bits)
        return hmac.compare_digest(derived, h.derived_key)
    if not stored:
        return False  # an empty HS_SECKEY authenticates nobody
    ok = hmac.compare_digest(stored, presented)
    if _HEX40.fullmatch(stored):
        hexed = hashlib.sha1(presented).hexdigest().encode("ascii")
        ok = hmac.compare_digest(stored, hexed) or ok
    return ok
