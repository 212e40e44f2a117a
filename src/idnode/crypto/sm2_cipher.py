"""SM2 public-key encryption (GB/T 32918.4-2016), the one the IDIS SDK decrypts session keys with.

Why: the Teleinfo IDIS SDK (``SampleIdClient`` / ``TransportEncryptHandler``) asks a server for
an encrypted session with key-exchange mode 3 and decrypts the session key it gets back with
``new cn.hutool.crypto.asymmetric.SM2(privateKey, null).decrypt(data)``: hutool's default, the
``C1C3C2`` order of BouncyCastle's ``SM2Engine``. ``cryptography`` has no SM2 at all, so the
algorithm -- a dozen lines of the standard -- is written here on the curve arithmetic that
``idnode.crypto.sm2`` already uses for signatures, and checked against the worked example of
GB/T 32918.4 appendix A (``tests/crypto/test_sm2_cipher.py``).

For a message M, the recipient's key P = dG and a random k in [1, n-1]::

    C1 = kG (uncompressed: 04 || x1 || y1);  (x2, y2) = kP
    t  = KDF(x2 || y2, len(M))      SM3 in counter mode, the counter a 4-byte int from 1
    C2 = M xor t;  C3 = SM3(x2 || M || y2)
    ciphertext = C1 || C3 || C2     (the old standard's C1 || C2 || C3 is also read)

A t of all zeros (probability 2^-8len) draws another k, as the standard says.
"""

from __future__ import annotations

import hmac

from idnode.crypto.sm2 import SM2P256V1, Curve, SM2PrivateKey, SM2PublicKey, sm3
from idnode.errors import InvalidValue
from idnode.runtime import ENTROPY, Random

C1C3C2 = "C1C3C2"  # GB/T 32918.4-2016, hutool's and BouncyCastle's default
C1C2C3 = "C1C2C3"  # the 2010 draft's order, still met in older software
_HASH = 32  # SM3


def kdf(z: bytes, length: int) -> bytes:
    """The key derivation function of GB/T 32918.4 section 5.4.3 (SM3, counter from 1)."""
    out = bytearray()
    counter = 1
    while len(out) < length:
        out += sm3(z, counter.to_bytes(4, "big"))
        counter += 1
    return bytes(out[:length])


def encrypt(
    public_key: SM2PublicKey,
    message: bytes,
    *,
    order: str = C1C3C2,
    random_bytes: Random = ENTROPY,
    k: int | None = None,
) -> bytes:
    """``message`` encrypted to ``public_key``. ``k`` fixes the ephemeral scalar (the
    standard's examples); otherwise it is drawn from ``random_bytes``."""
    message = bytes(message)
    if not message:
        raise InvalidValue("SM2 encryption of an empty message")
    curve = public_key.curve
    n = curve.size
    point = curve.point(public_key.x, public_key.y)
    while True:
        scalar = k if k is not None else _scalar(curve, random_bytes)
        c1 = curve.g * scalar
        shared = point * scalar
        x2 = shared.x().to_bytes(n, "big")
        y2 = shared.y().to_bytes(n, "big")
        t = kdf(x2 + y2, len(message))
        if any(t):
            break
        if k is not None:
            raise InvalidValue("SM2 encryption: this k gives an all-zero key stream")
    c1_bytes = b"\x04" + c1.x().to_bytes(n, "big") + c1.y().to_bytes(n, "big")
    c2 = bytes(a ^ b for a, b in zip(message, t, strict=True))
    c3 = sm3(x2, message, y2)
    return c1_bytes + (c3 + c2 if order == C1C3C2 else c2 + c3)


def decrypt(private_key: SM2PrivateKey, ciphertext: bytes, *, order: str = C1C3C2) -> bytes:
    """The message of ``ciphertext``; ``InvalidValue`` when it is malformed, not for this key
    or altered (C3 does not match)."""
    data = bytes(ciphertext)
    curve = private_key.curve
    n = curve.size
    c1_size = 1 + 2 * n
    if len(data) <= c1_size + _HASH:
        raise InvalidValue("SM2 ciphertext too short")
    if data[0] != 4:
        raise InvalidValue("SM2 ciphertext: C1 is not an uncompressed point")
    x1 = int.from_bytes(data[1 : 1 + n], "big")
    y1 = int.from_bytes(data[1 + n : c1_size], "big")
    if not curve.contains(x1, y1):  # an off-curve C1 would leak bits of d (invalid curve)
        raise InvalidValue("SM2 ciphertext: C1 is not on the curve")
    rest = data[c1_size:]
    if order == C1C3C2:
        c3, c2 = rest[:_HASH], rest[_HASH:]
    else:
        c2, c3 = rest[:-_HASH], rest[-_HASH:]
    shared = curve.point(x1, y1) * private_key.d
    x2 = shared.x().to_bytes(n, "big")
    y2 = shared.y().to_bytes(n, "big")
    t = kdf(x2 + y2, len(c2))
    if not any(t):
        raise InvalidValue("SM2 ciphertext: all-zero key stream")
    message = bytes(a ^ b for a, b in zip(c2, t, strict=True))
    if not hmac.compare_digest(sm3(x2, message, y2), c3):
        raise InvalidValue("SM2 ciphertext does not verify (altered, or not for this key)")
    return message


def _scalar(curve: Curve, random_bytes: Random) -> int:
    size = (curve.n.bit_length() + 7) // 8
    while True:
        k = int.from_bytes(random_bytes(size), "big")
        if 1 <= k < curve.n:
            return k


__all__ = ["C1C2C3", "C1C3C2", "SM2P256V1", "decrypt", "encrypt", "kdf"]
