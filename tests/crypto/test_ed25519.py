"""Ed25519 as a public-key option: RFC 8032 vector, HS_PUBKEY round trip, challenge answers,
and malformed keys refused."""

from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from idnode.auth.answers import (
    make_public_key_answer,
    parse_public_key_answer,
    verify_public_key_answer,
)
from idnode.crypto import keys
from idnode.errors import IdnodeError, InvalidValue

# RFC 8032 section 7.1, TEST 1 (empty message)
SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)
NONCE, DIGEST = bytes(16), bytes(range(32))


def lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_rfc8032_vector_through_our_api():
    key = ed25519.Ed25519PrivateKey.from_private_bytes(SECRET)
    assert keys.sign(key, b"") == SIGNATURE
    pub = keys.decode_public_key(lp(b"ED25519_PUB_KEY") + b"\0\0" + lp(PUBLIC))
    assert keys.verify(pub, SIGNATURE, b"")
    assert not keys.verify(pub, SIGNATURE, b"x")
    assert keys.encode_public_key(key) == lp(b"ED25519_PUB_KEY") + b"\0\0" + lp(PUBLIC)


def test_round_trip_and_tampering():
    key = keys.generate_key("ed25519")
    pub = keys.decode_public_key(keys.encode_public_key(key))
    sig = keys.sign(key, b"data", "SHA256")  # the hash name does not apply to Ed25519
    assert keys.verify(pub, sig, b"data")
    assert not keys.verify(pub, sig[:-1] + bytes([sig[-1] ^ 1]), b"data")
    assert not keys.verify(pub, sig[:63], b"data")
    assert keys.key_algorithm(pub) == "Ed25519"
    assert keys.default_hash(pub) == "Ed25519"


@pytest.mark.parametrize("raw", [PUBLIC[:31], PUBLIC + b"\0", b""])
def test_wrong_length_keys_are_refused(raw):
    with pytest.raises(InvalidValue, match="32 bytes"):
        keys.decode_public_key(lp(b"ED25519_PUB_KEY") + b"\0\0" + lp(raw))


def test_truncated_value_is_refused():
    data = keys.encode_public_key(keys.generate_key("ed25519"))
    with pytest.raises(IdnodeError):
        keys.decode_public_key(data[:-5])


def test_private_key_forms():
    key = keys.generate_key("ed25519")
    raw = key.public_key().public_bytes_raw()
    pem = keys.private_key_to_pem(key, "pw")
    assert keys.private_key_from_pem(pem, "pw").public_key().public_bytes_raw() == raw
    enc = keys.encode_private_key_file(key, "pw")
    assert keys.decode_private_key_file(enc, "pw").public_key().public_bytes_raw() == raw
    jwk = keys.public_key_to_jwk(key)
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519"
    assert keys.public_key_from_jwk(jwk).public_bytes_raw() == raw


def test_challenge_answer():
    key = keys.generate_key("ed25519")
    stored = keys.encode_public_key(key)
    answer = make_public_key_answer(key, NONCE, DIGEST)
    hash_id, sig = parse_public_key_answer(answer)
    assert hash_id == b"Ed25519"
    assert verify_public_key_answer(stored, NONCE, DIGEST, answer)
    assert not verify_public_key_answer(stored, NONCE, DIGEST[::-1], answer)
    assert not verify_public_key_answer(stored, NONCE, DIGEST, lp(b"SHA-256") + lp(sig))
    other = keys.encode_public_key(keys.generate_key("ed25519"))
    assert not verify_public_key_answer(other, NONCE, DIGEST, answer)
