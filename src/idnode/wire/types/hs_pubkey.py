"""HS_PUBKEY: a public key an administrator or server proves itself with (RFC 3651; RFC 3652
public-key authentication).

The byte layouts of every supported algorithm live in ``idnode.crypto.keys`` (HSJ
``Util.getBytesFromPublicKey``); this module adds the write rule -- the key must decode and
be strong enough to verify with -- and the REST form, HSJ's JWK-like ``{"format": "key",
"value": {"kty": ...}}``, also read from a PEM string.

The key type field is checked here first so that a refusal never repeats bytes of the value
back (``decode_public_key`` quotes an unknown type name).

Every form HANDLE.NET writes is accepted, its RSA keys' empty trailing field included, and
stored as sent; keys we build are written in the canonical form (``crypto.keys``). A
DH_PUB_KEY is refused: it exchanges a session key and proves no identity.
"""

from __future__ import annotations

from typing import Any

from idnode.crypto.keys import (
    DSA_PUB_KEY,
    ED25519_PUB_KEY,
    RSA_PUB_KEY,
    SM2_PUB_KEY,
    PublicKey,
    decode_public_key,
    encode_public_key,
    public_key_from_jwk,
    public_key_from_pem,
    public_key_to_jwk,
)
from idnode.encoding import Reader
from idnode.errors import InvalidValue
from idnode.model import HS_PUBKEY
from idnode.wire.types.base import ValueType

SUPPORTED_KEY_TYPES = (RSA_PUB_KEY, DSA_PUB_KEY, SM2_PUB_KEY, ED25519_PUB_KEY)
_SUPPORTED_RAW = frozenset(t.encode("ascii") for t in SUPPORTED_KEY_TYPES)


def parse_public_key(data: bytes) -> PublicKey:
    """HS_PUBKEY data -> key; ``InvalidValue`` names the rule, never the data."""
    if Reader(data).bytes32("pubkey.type") not in _SUPPORTED_RAW:
        raise InvalidValue(
            "pubkey.type: unsupported key type; expected " + ", ".join(SUPPORTED_KEY_TYPES)
        )
    return decode_public_key(data)


def public_key_from_json(value: Any, field: str) -> PublicKey:
    """The ``value`` of a ``key`` object: a JWK object, or a PEM public key as a string."""
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return public_key_from_pem(value)
    return public_key_from_jwk(value, field)


TYPE: ValueType[PublicKey] = ValueType(
    name=HS_PUBKEY,
    parse=parse_public_key,
    encode=encode_public_key,
    json_format="key",
    render=public_key_to_jwk,
    read=public_key_from_json,
)

__all__ = ["SUPPORTED_KEY_TYPES", "TYPE", "parse_public_key", "public_key_from_json"]
