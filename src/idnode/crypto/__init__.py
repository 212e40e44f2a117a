"""Key formats and algorithms: the one place that knows algorithm names and encodings.

``keys`` covers RSA and DSA as the Handle.Net software stores them (HS_PUBKEY, private key
files) plus PEM for our own files and the signatures used by challenge-response.
"""

from idnode.crypto.keys import (
    PrivateKey,
    PublicKey,
    decode_private_key,
    decode_private_key_file,
    decode_public_key,
    encode_private_key,
    encode_private_key_file,
    encode_public_key,
    generate_key,
    private_key_from_pem,
    private_key_to_pem,
    public_key_from_jwk,
    public_key_from_pem,
    public_key_to_jwk,
    public_key_to_pem,
    sign,
    signature_algorithm,
    verify,
)

__all__ = [
    "PrivateKey",
    "PublicKey",
    "decode_private_key",
    "decode_private_key_file",
    "decode_public_key",
    "encode_private_key",
    "encode_private_key_file",
    "encode_public_key",
    "generate_key",
    "private_key_from_pem",
    "private_key_to_pem",
    "public_key_from_jwk",
    "public_key_from_pem",
    "public_key_to_jwk",
    "public_key_to_pem",
    "sign",
    "signature_algorithm",
    "verify",
]
