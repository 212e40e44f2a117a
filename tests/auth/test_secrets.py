"""HS_SECKEY at rest: hashed forms and the plain-secret check behind HTTP Basic."""

from __future__ import annotations

import base64
import hashlib

import pytest

from idnode.auth.secrets import (
    hash_secret,
    is_hashed,
    parse_hashed,
    verify_plain_secret,
)
from idnode.errors import InvalidValue, UnableToAuthenticate
from idnode.wire.types.hs_seckey import encode_secret_key

SALT = b"0123456789abcdef"


def test_pbkdf2_form_by_hand():
    stored = hash_secret(b"secret", "PBKDF2-HMAC-SHA1", iterations=1000, salt=SALT)
    dk = hashlib.pbkdf2_hmac("sha1", b"secret", SALT, 1000, 20)
    b64 = base64.b64encode
    expected = b"$pbkdf2-sha1$i=1000,l=160$" + b64(SALT).rstrip(b"=") + b"$" + b64(dk).rstrip(b"=")
    assert stored == expected
    assert b"secret" not in stored
    parsed = parse_hashed(stored)
    assert (parsed.hash_name, parsed.iterations, parsed.salt, parsed.derived_key) == (
        "sha1",
        1000,
        SALT,
        dk,
    )
    assert parsed.key_bits == 160


def test_pbkdf2_sha256_form():
    stored = hash_secret("secret", "pbkdf2-hmac-sha256", iterations=10, salt=SALT)
    assert stored.startswith(b"$pbkdf2-sha256$i=10,l=256$")
    assert parse_hashed(stored).derived_key == hashlib.pbkdf2_hmac(
        "sha256", b"secret", SALT, 10, 32
    )


def test_random_salt_used_when_none_given(rand):
    a = hash_secret(b"s", iterations=10, random_bytes=rand)
    b = hash_secret(b"s", iterations=10, random_bytes=rand)
    assert a != b and is_hashed(a) and is_hashed(b)
    assert len(parse_hashed(a).salt) == 16


def test_hsj_hex_form_matches_wire_encoder():
    assert hash_secret(b"secret", "SHA1-HEX") == encode_secret_key(b"secret", hashed=True)
    assert not is_hashed(hash_secret(b"secret", "SHA1-HEX"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alg": "MD5"},
        {"iterations": 0},
        {"iterations": 10_000_000},
        {"salt": b"short"},
        {"salt": bytes(65)},
        {"key_bits": 100},
        {"key_bits": 4096},
    ],
)
def test_hash_secret_refuses_bad_parameters(kwargs):
    kwargs.setdefault("salt", SALT)
    with pytest.raises(InvalidValue):
        hash_secret(b"s", **kwargs)


@pytest.mark.parametrize(
    "data",
    [
        b"$pbkdf2-sha1$",
        b"$pbkdf2-sha1$i=10,l=160$c2FsdHNhbHQ$",
        b"$pbkdf2-sha1$i=10,l=168$MDEyMzQ1Njc4OWFiY2RlZg$AAAA",  # length disagrees with key
        b"$pbkdf2-sha1$i=9999999,l=24$MDEyMzQ1Njc4OWFiY2RlZg$AAAA",  # too many iterations
        b"$pbkdf2-sha1$i=10,l=24$YQ$AAAA",  # salt too short
        b"$pbkdf2-md5$i=10,l=24$MDEyMzQ1Njc4OWFiY2RlZg$AAAA",
    ],
)
def test_damaged_hashed_forms(data):
    if not is_hashed(data):
        assert verify_plain_secret(data, b"x") is False  # just an odd raw secret
        return
    with pytest.raises(UnableToAuthenticate):
        parse_hashed(data)


def test_plain_secret_raw():
    assert verify_plain_secret(b"secret", b"secret")
    assert not verify_plain_secret(b"secret", b"Secret")
    assert not verify_plain_secret(b"secret", b"secret ")
    assert not verify_plain_secret(b"secret", b"")
    assert not verify_plain_secret(b"", b"")


def test_plain_secret_hsj_hex_form():
    stored = hash_secret(b"secret", "SHA1-HEX")
    assert verify_plain_secret(stored, b"secret")  # the password it was made from
    assert verify_plain_secret(stored, stored)  # or the hex itself, as HSJ compares
    assert not verify_plain_secret(stored, b"other")


@pytest.mark.parametrize("alg", ["PBKDF2-HMAC-SHA1", "PBKDF2-HMAC-SHA256"])
def test_plain_secret_pbkdf2_forms(alg):
    stored = hash_secret(b"secret", alg, iterations=100, salt=SALT)
    assert verify_plain_secret(stored, b"secret")
    assert not verify_plain_secret(stored, b"secreT")
    assert not verify_plain_secret(stored, stored)


def test_plain_secret_non_ascii_bytes():
    secret = "пароль".encode()
    stored = hash_secret(secret, iterations=10, salt=SALT)
    assert verify_plain_secret(stored, secret)
    assert not verify_plain_secret(stored, "пароль".encode("cp1251"))
