"""HS_SECKEY: a shared secret, the key of RFC 3652's secret-key authentication.

The data is the secret's bytes, or a one-way form of it: lowercase hex SHA-1 as HSJ's
``Encoder.encodeSecretKey(secret, true)`` writes, or idnode's PBKDF2 form
(``idnode.auth.secrets``). Any bytes are a valid secret, so a write is not checked, and the
REST form is the plain ``string``/``base64`` of any data (values of this type are normally
not public; the permission bits, not the JSON, keep them private).
"""

from __future__ import annotations

import hashlib

from idnode.model import HS_SECKEY
from idnode.wire.types.base import ValueType


def encode_secret_key(secret: bytes | str, *, hashed: bool = False) -> bytes:
    """HS_SECKEY data; ``hashed`` stores the lowercase hex SHA-1 of the secret, as HSJ does,
    so the value never holds the secret itself."""
    raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if hashed:
        return hashlib.sha1(raw).hexdigest().encode("ascii")
    return raw


def decode_secret_key(data: bytes) -> bytes:
    return bytes(data)


def _accept(data: bytes) -> None:
    """Every byte string is a secret."""


TYPE: ValueType[bytes] = ValueType(
    name=HS_SECKEY, parse=decode_secret_key, encode=bytes, check=_accept
)

__all__ = ["TYPE", "decode_secret_key", "encode_secret_key"]
