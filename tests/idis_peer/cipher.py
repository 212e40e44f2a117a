"""The SDK's encrypted connection: the session key's SM2 envelope and SM4-CBC messages.

``TransportEncryptHandler`` decrypts the session setup's data with hutool
``new SM2(privateKey, null).decrypt(data)`` -- BouncyCastle's ``SM2Engine`` in hutool's default
``C1C3C2`` order (GB/T 32918.4-2016) -- and reads a 4-byte algorithm code (4: SM4,
``HdlSecurityProvider.ENCRYPT_ALG_SM4``) followed by the key. Messages then go as hutool
``SM4(Mode.CBC, Padding.PKCS5Padding, key, key)`` encrypts them: the session key is also the
IV, and no IV is sent (``MessagePacketsManager``, ``HandleDecoder.decryptMessage``).

The SM2 decryption is written here from the standard on idnode's curve arithmetic and SM3
(``idnode.crypto.sm2``), not with the server's own cipher module, so the two are checked
against each other.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from idnode.crypto.sm2 import SM2PrivateKey, sm3

ENCRYPT_ALG_SM4 = 4


def _kdf(z: bytes, length: int) -> bytes:
    out, counter = b"", 1
    while len(out) < length:
        out += sm3(z, counter.to_bytes(4, "big"))
        counter += 1
    return out[:length]


def sm2_decrypt(key: SM2PrivateKey, data: bytes) -> bytes:
    """GB/T 32918.4 decryption of ``04 || x1 || y1 || C3 || C2``."""
    curve = key.curve
    n = curve.size
    if data[0] != 4:
        raise ValueError("C1 is not an uncompressed point")
    x1 = int.from_bytes(data[1 : 1 + n], "big")
    y1 = int.from_bytes(data[1 + n : 1 + 2 * n], "big")
    c3, c2 = data[1 + 2 * n : 1 + 2 * n + 32], data[1 + 2 * n + 32 :]
    shared = curve.point(x1, y1) * key.d
    x2, y2 = shared.x().to_bytes(n, "big"), shared.y().to_bytes(n, "big")
    message = bytes(a ^ b for a, b in zip(c2, _kdf(x2 + y2, len(c2)), strict=True))
    if sm3(x2, message, y2) != c3:
        raise ValueError("C3 does not match: not for this key, or altered")
    return message


class Sm4Cbc:
    """hutool ``SM4(CBC, PKCS5Padding, key, key)``."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise ValueError(f"an SM4 key has 16 bytes, not {len(key)}")
        self.key = key

    def encrypt(self, plain: bytes) -> bytes:
        padder = padding.PKCS7(128).padder()
        padded = padder.update(plain) + padder.finalize()
        enc = Cipher(algorithms.SM4(self.key), modes.CBC(self.key)).encryptor()
        return enc.update(padded) + enc.finalize()

    def decrypt(self, sealed: bytes) -> bytes:
        dec = Cipher(algorithms.SM4(self.key), modes.CBC(self.key)).decryptor()
        padded = dec.update(sealed) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()


def session_key(key: SM2PrivateKey, data: bytes) -> tuple[int, bytes]:
    """(algorithm code, key) of a mode-3 session setup answer."""
    plain = sm2_decrypt(key, data)
    return int.from_bytes(plain[:4], "big"), plain[4:]
