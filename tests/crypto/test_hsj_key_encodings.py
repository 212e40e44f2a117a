"""Issue 14.3: every HS_PUBKEY encoding HANDLE.NET writes is read; ours stays canonical.

The bytes are built here after HSJ's ``Util.getBytesFromPublicKey``, independently of the
code under test: its RSA buffer is sized for four length fields but three are written
(type, e, n), so HANDLE.NET's RSA keys end with four zero bytes; DSA (type, q, p, g, y) and
DH (type, y, p, g) fill their buffers exactly.
"""

from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import dh, dsa, rsa

from idnode.crypto.keys import (
    decode_dh_public_key,
    decode_public_key,
    encode_dh_public_key,
    encode_public_key,
    generate_key,
)
from idnode.errors import InvalidValue, MalformedMessage
from idnode.wire.types.hs_pubkey import parse_public_key

# RFC 3526 group 2 (1024-bit MODP), the size HSJ's clients use
P_1024 = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
    "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
    "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)


def jb(n: int) -> bytes:
    """Java ``BigInteger.toByteArray()`` of a non-negative number."""
    raw = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
    return b"\x00" + raw if raw[0] & 0x80 else raw


def field(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


def hsj_rsa(key: rsa.RSAPrivateKey) -> bytes:
    nums = key.public_key().public_numbers()
    return field(b"RSA_PUB_KEY") + b"\0\0" + field(jb(nums.e)) + field(jb(nums.n)) + b"\0" * 4


def hsj_dsa(key: dsa.DSAPrivateKey) -> bytes:
    nums = key.public_key().public_numbers()
    par = nums.parameter_numbers
    numbers = (par.q, par.p, par.g, nums.y)
    return field(b"DSA_PUB_KEY") + b"\0\0" + b"".join(field(jb(n)) for n in numbers)


def hsj_dh(key: dh.DHPublicKey) -> bytes:
    nums = key.public_numbers()
    par = nums.parameter_numbers
    numbers = (nums.y, par.p, par.g)
    return field(b"DH_PUB_KEY") + b"\0\0" + b"".join(field(jb(n)) for n in numbers)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return generate_key("rsa", 1024)


@pytest.fixture(scope="module")
def dsa_key() -> dsa.DSAPrivateKey:
    return generate_key("dsa", 1024)


@pytest.fixture(scope="module")
def dh_key() -> dh.DHPublicKey:
    return dh.DHParameterNumbers(P_1024, 2).parameters().generate_private_key().public_key()


def test_handle_net_rsa_with_its_trailing_field(rsa_key):
    data = hsj_rsa(rsa_key)
    assert data.endswith(b"\0\0\0\0")
    assert decode_public_key(data).public_numbers() == rsa_key.public_key().public_numbers()
    assert parse_public_key(data).public_numbers() == rsa_key.public_key().public_numbers()
    assert encode_public_key(rsa_key) == data[:-4]  # we write it without


def test_handle_net_dsa_with_and_without_the_field(dsa_key):
    want = dsa_key.public_key().public_numbers()
    data = hsj_dsa(dsa_key)
    assert encode_public_key(dsa_key) == data
    for form in (data, data + b"\0\0\0\0"):
        assert decode_public_key(form).public_numbers() == want
        assert parse_public_key(form).public_numbers() == want


def test_handle_net_dh_with_and_without_the_field(dh_key):
    data = hsj_dh(dh_key)
    assert encode_dh_public_key(dh_key) == data
    for form in (data, data + b"\0\0\0\0"):
        assert decode_dh_public_key(form).public_numbers() == dh_key.public_numbers()
    with pytest.raises(InvalidValue, match="cannot verify"):
        decode_public_key(data)  # a DH key proves nobody's identity
    with pytest.raises(InvalidValue):
        parse_public_key(data)  # nor is it an administrator's HS_PUBKEY


@pytest.mark.parametrize(
    "tail", [b"\0", b"\0\0", b"\0\0\0", b"\0\0\0\0\0", b"\0\0\0\x01", b"\0" * 8]
)
def test_other_trailing_bytes_are_refused(rsa_key, dh_key, tail):
    with pytest.raises(MalformedMessage):
        decode_public_key(hsj_rsa(rsa_key)[:-4] + tail)
    with pytest.raises(MalformedMessage):
        decode_dh_public_key(hsj_dh(dh_key) + tail)


def test_weak_or_degenerate_dh_keys_are_refused(dh_key):
    small_p = P_1024 >> 400  # 624 bits
    data = field(b"DH_PUB_KEY") + b"\0\0" + field(jb(5)) + field(jb(small_p)) + field(jb(2))
    with pytest.raises(InvalidValue, match="too weak"):
        decode_dh_public_key(data)
    degenerate = field(b"DH_PUB_KEY") + b"\0\0" + field(jb(1)) + field(jb(P_1024)) + field(jb(2))
    with pytest.raises(InvalidValue):
        decode_dh_public_key(degenerate)
    with pytest.raises(InvalidValue, match="expected a DH_PUB_KEY"):
        decode_dh_public_key(field(b"RSA_PUB_KEY") + b"\0\0")
