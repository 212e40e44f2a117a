"""HS_PUBKEY and private key formats of Handle.Net, PEM files, signatures."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import dsa, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from hypothesis import given, settings
from hypothesis import strategies as st

from idnode.crypto.keys import (
    decode_private_key,
    decode_private_key_file,
    decode_public_key,
    encode_private_key,
    encode_private_key_file,
    encode_public_key,
    generate_key,
    is_private_key_file_encrypted,
    java_bytes,
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
from idnode.errors import InvalidValue, MalformedMessage


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return generate_key("rsa", 1024)


@pytest.fixture(scope="module")
def dsa_key() -> dsa.DSAPrivateKey:
    return generate_key("dsa", 1024)


def jb(n: int) -> bytes:
    """Java BigInteger.toByteArray, written independently of the code under test."""
    raw = n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big")
    return b"\x00" + raw if raw[0] & 0x80 else raw


def field(raw: bytes) -> bytes:
    return len(raw).to_bytes(4, "big") + raw


# --- Java integers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "raw"),
    [(0, "00"), (1, "01"), (127, "7f"), (128, "0080"), (255, "00ff"), (65537, "010001")],
)
def test_java_bytes(n: int, raw: str) -> None:
    assert java_bytes(n) == bytes.fromhex(raw)


@given(st.integers(0, 2**600))
def test_java_bytes_matches_reference(n: int) -> None:
    assert java_bytes(n) == jb(n)


# --- HS_PUBKEY ----------------------------------------------------------------------------


def test_rsa_layout(rsa_key) -> None:
    nums = rsa_key.public_key().public_numbers()
    expected = (
        bytes.fromhex("0000000b")
        + b"RSA_PUB_KEY"  # key type, UTF8-String
        + bytes.fromhex("0000")  # reserved flags
        + bytes.fromhex("00000003010001")  # e = 65537
        + bytes.fromhex("00000081")
        + b"\x00"
        + nums.n.to_bytes(128, "big")  # n, sign byte
    )
    assert encode_public_key(rsa_key.public_key()) == expected
    assert encode_public_key(rsa_key) == expected  # a private key gives its public half


def test_dsa_layout_q_p_g_y(dsa_key) -> None:
    nums = dsa_key.public_key().public_numbers()
    par = nums.parameter_numbers
    expected = (
        field(b"DSA_PUB_KEY")
        + b"\x00\x00"
        + field(jb(par.q))
        + field(jb(par.p))
        + field(jb(par.g))
        + field(jb(nums.y))
    )
    assert encode_public_key(dsa_key) == expected


def test_round_trip_rsa_and_dsa(rsa_key, dsa_key) -> None:
    for key in (rsa_key, dsa_key):
        pub = key.public_key()
        back = decode_public_key(encode_public_key(pub))
        assert back.public_numbers() == pub.public_numbers()


def test_flags_ignored(rsa_key) -> None:
    data = bytearray(encode_public_key(rsa_key))
    data[15:17] = b"\xff\xff"
    assert decode_public_key(bytes(data)).public_numbers() == rsa_key.public_key().public_numbers()


def test_numbers_read_unsigned(rsa_key) -> None:
    # HSJ reads with BigInteger(1, bytes): no sign byte needed
    nums = rsa_key.public_key().public_numbers()
    data = field(b"RSA_PUB_KEY") + b"\x00\x00" + field(b"\x01\x00\x01")
    data += field(nums.n.to_bytes(128, "big"))
    assert decode_public_key(data).public_numbers() == nums


@pytest.mark.parametrize("ktype", [b"DH_PUB_KEY", b"EC_PUB_KEY", b"", b"\xff\xfe"])
def test_unknown_type(ktype: bytes) -> None:
    with pytest.raises(InvalidValue):
        decode_public_key(field(ktype) + b"\x00\x00" + field(b"\x01") + field(b"\x01"))


def test_weak_rsa_rejected_clearly() -> None:
    n = (2**511 + 1) * 3 | 1
    data = field(b"RSA_PUB_KEY") + b"\x00\x00" + field(jb(65537)) + field(jb(n))
    with pytest.raises(InvalidValue, match="at least 1024"):
        decode_public_key(data)


def test_invalid_rsa_numbers() -> None:
    data = field(b"RSA_PUB_KEY") + b"\x00\x00" + field(jb(4)) + field(jb(2**1024 + 1))
    with pytest.raises(InvalidValue):
        decode_public_key(data)


def test_truncated_public_key(rsa_key, dsa_key) -> None:
    for key in (rsa_key, dsa_key):
        data = encode_public_key(key)
        for cut in range(len(data)):
            with pytest.raises(MalformedMessage):
                decode_public_key(data[:cut])
        with pytest.raises(MalformedMessage):
            decode_public_key(data + b"\x00")


@given(st.binary(max_size=80))
def test_random_public_key_bytes(data: bytes) -> None:
    try:
        decode_public_key(data)
    except (MalformedMessage, InvalidValue):
        pass


@given(st.sampled_from([b"RSA_PUB_KEY", b"DSA_PUB_KEY"]), st.binary(max_size=120))
def test_random_numbers_after_valid_type(ktype: bytes, rest: bytes) -> None:
    try:
        decode_public_key(field(ktype) + rest)
    except (MalformedMessage, InvalidValue):
        pass


# --- JSON (JWK-like) ----------------------------------------------------------------------


def test_jwk(rsa_key, dsa_key) -> None:
    jwk = public_key_to_jwk(rsa_key)
    assert set(jwk) == {"kty", "n", "e"} and jwk["e"] == "AQAB" and "=" not in jwk["n"]
    assert set(public_key_to_jwk(dsa_key)) == {"kty", "y", "p", "q", "g"}
    for key in (rsa_key, dsa_key):
        back = public_key_from_jwk(public_key_to_jwk(key))
        assert back.public_numbers() == key.public_key().public_numbers()


@pytest.mark.parametrize(
    "obj", [None, {}, {"kty": "RSA"}, {"kty": "RSA", "n": 5, "e": "AQAB"}, {"kty": "OKP"}]
)
def test_bad_jwk(obj: object) -> None:
    with pytest.raises(InvalidValue):
        public_key_from_jwk(obj)


# --- private keys -------------------------------------------------------------------------


def test_private_rsa_layout_is_crt(rsa_key) -> None:
    nums = rsa_key.private_numbers()
    expected = field(b"RSA_PRIVCRT_KEY") + b"".join(
        field(jb(x))
        for x in (
            nums.public_numbers.n,
            nums.public_numbers.e,
            nums.d,
            nums.p,
            nums.q,
            nums.dmp1,
            nums.dmq1,
            nums.iqmp,
        )
    )
    assert encode_private_key(rsa_key) == expected


def test_private_dsa_layout_x_p_q_g(dsa_key) -> None:
    nums = dsa_key.private_numbers()
    par = nums.public_numbers.parameter_numbers
    expected = field(b"DSA_PRIV_KEY") + b"".join(
        field(jb(x)) for x in (nums.x, par.p, par.q, par.g)
    )
    assert encode_private_key(dsa_key) == expected


def test_private_round_trip(rsa_key, dsa_key) -> None:
    for key in (rsa_key, dsa_key):
        assert decode_private_key(encode_private_key(key)).private_numbers() == (
            key.private_numbers()
        )


def test_plain_rsa_priv_key_recovers_primes(rsa_key) -> None:
    nums = rsa_key.private_numbers()
    data = field(b"RSA_PRIV_KEY") + field(jb(nums.public_numbers.n)) + field(jb(nums.d))
    assert decode_private_key(data).private_numbers() == nums


def test_private_key_truncated_and_unknown(rsa_key) -> None:
    data = encode_private_key(rsa_key)
    for cut in range(0, len(data), 7):
        with pytest.raises(MalformedMessage):
            decode_private_key(data[:cut])
    with pytest.raises(InvalidValue):
        decode_private_key(field(b"EC_PRIV_KEY") + field(b"\x01"))


# --- private key files (admpriv.bin) ------------------------------------------------------


def test_unencrypted_file_has_flag_1(rsa_key) -> None:
    data = encode_private_key_file(rsa_key)
    assert data[:4] == b"\x00\x00\x00\x01"  # HSJ Common.ENCRYPT_NONE
    assert data[4:] == encode_private_key(rsa_key)
    assert not is_private_key_file_encrypted(data)
    assert decode_private_key_file(data).private_numbers() == rsa_key.private_numbers()


def test_bare_key_bytes_accepted(dsa_key) -> None:
    # the first 4 bytes are a key-type length > MAX_ENCRYPT (9), so no wrapper
    bare = encode_private_key(dsa_key)
    assert decode_private_key_file(bare).private_numbers() == dsa_key.private_numbers()


def _fixed_random(n: int) -> bytes:
    return bytes(range(n))


def test_encrypted_file_layout_and_round_trip(rsa_key) -> None:
    data = encode_private_key_file(rsa_key, "pässwörd", random_bytes=_fixed_random)
    assert is_private_key_file_encrypted(data)
    # decrypt by hand from the documented HSJ layout
    assert data[:4] == b"\x00\x00\x00\x04"
    pos = 4
    salt_len = int.from_bytes(data[pos : pos + 4], "big")
    salt = data[pos + 4 : pos + 4 + salt_len]
    pos += 4 + salt_len
    iterations = int.from_bytes(data[pos : pos + 4], "big")
    bits = int.from_bytes(data[pos + 4 : pos + 8], "big")
    pos += 8
    iv = data[pos + 4 : pos + 20]
    pos += 20
    ct = data[pos + 4 :]
    assert (salt, iterations, bits, iv) == (bytes(range(16)), 10000, 128, bytes(range(16)))
    assert int.from_bytes(data[pos : pos + 4], "big") == len(ct)
    # Java hashes each passphrase byte as a char, UTF-8 encoded
    java_password = "pässwörd".encode().decode("latin-1").encode()
    secret = PBKDF2HMAC(hashes.SHA1(), 16, salt, iterations).derive(java_password)
    dec = Cipher(algorithms.AES(secret), modes.CBC(iv)).decryptor()
    unpad = padding.PKCS7(128).unpadder()
    clear = unpad.update(dec.update(ct) + dec.finalize()) + unpad.finalize()
    assert clear == encode_private_key(rsa_key)
    back = decode_private_key_file(data, "pässwörd")
    assert back.private_numbers() == rsa_key.private_numbers()


def test_encrypted_file_needs_right_passphrase(dsa_key) -> None:
    data = encode_private_key_file(dsa_key, b"right")
    with pytest.raises(InvalidValue, match="passphrase"):
        decode_private_key_file(data)
    with pytest.raises(InvalidValue, match="passphrase"):
        decode_private_key_file(data, b"wrong")


def test_desede_file_readable(dsa_key) -> None:
    salt, iv = b"s" * 16, b"i" * 8
    secret = PBKDF2HMAC(hashes.SHA1(), 24, salt, 1000).derive(b"pw")
    pad = padding.PKCS7(64).padder()
    padded = pad.update(encode_private_key(dsa_key)) + pad.finalize()
    enc = Cipher(TripleDES(secret), modes.CBC(iv)).encryptor()
    ct = enc.update(padded) + enc.finalize()
    data = (
        b"\x00\x00\x00\x03"
        + field(salt)
        + (1000).to_bytes(4, "big")
        + (192).to_bytes(4, "big")
        + field(iv)
        + field(ct)
    )
    assert decode_private_key_file(data, "pw").private_numbers() == dsa_key.private_numbers()


@pytest.mark.parametrize("kind", [0, 2, 5, 9])
def test_legacy_or_unknown_encryption_refused(kind: int) -> None:
    with pytest.raises(InvalidValue):
        decode_private_key_file(kind.to_bytes(4, "big") + b"\x00" * 40, "pw")


def test_encrypted_file_truncated(rsa_key) -> None:
    data = encode_private_key_file(rsa_key, "pw", random_bytes=_fixed_random)
    for cut in (0, 3, 10, 30, 40, len(data) - 1):
        with pytest.raises(MalformedMessage):
            decode_private_key_file(data[:cut], "pw")


@settings(max_examples=50)
@given(st.binary(max_size=80))
def test_random_key_files(data: bytes) -> None:
    try:
        decode_private_key_file(data, "pw")
    except (MalformedMessage, InvalidValue):
        pass


# --- PEM ----------------------------------------------------------------------------------


def test_pem_round_trip(rsa_key, dsa_key) -> None:
    for key in (rsa_key, dsa_key):
        pem = private_key_to_pem(key)
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        assert private_key_from_pem(pem).private_numbers() == key.private_numbers()
        pub = public_key_to_pem(key)
        assert public_key_from_pem(pub).public_numbers() == key.public_key().public_numbers()


def test_pem_with_passphrase(rsa_key) -> None:
    pem = private_key_to_pem(rsa_key, "secret")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert private_key_from_pem(pem, "secret").private_numbers() == rsa_key.private_numbers()
    for wrong in (None, "nope"):
        with pytest.raises(InvalidValue):
            private_key_from_pem(pem, wrong)


def test_pem_garbage() -> None:
    with pytest.raises(InvalidValue):
        private_key_from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InvalidValue):
        public_key_from_pem("not a key")


# --- generation and signatures ------------------------------------------------------------


@pytest.mark.parametrize(("alg", "bits"), [("rsa", 512), ("dsa", 1000), ("ec", 256)])
def test_generate_key_refuses(alg: str, bits: int) -> None:
    with pytest.raises(InvalidValue):
        generate_key(alg, bits)


@pytest.mark.parametrize("hash_name", ["SHA1", "SHA-1", "sha256", "SHA-256"])
def test_sign_verify(rsa_key, dsa_key, hash_name: str) -> None:
    msg = b"challenge nonce + request digest"
    for key in (rsa_key, dsa_key):
        sig = sign(key, msg, hash_name)
        assert verify(key.public_key(), sig, msg, hash_name)
        assert not verify(key.public_key(), sig, msg + b"!", hash_name)
        assert not verify(key.public_key(), sig[:-1] + bytes([sig[-1] ^ 1]), msg, hash_name)
        assert not verify(key.public_key(), b"", msg, hash_name)


def test_signature_formats(rsa_key, dsa_key) -> None:
    msg = b"m"
    assert len(sign(rsa_key, msg, "SHA256")) == 128  # PKCS#1 v1.5: one modulus length
    assert sign(dsa_key, msg, "SHA1")[0] == 0x30  # DER SEQUENCE {r, s}, as Java writes
    # PKCS#1 v1.5 is deterministic: check against the textbook construction
    digest_info = bytes.fromhex("3021300906052b0e03021a05000414") + hashlib.sha1(msg).digest()
    em = b"\x00\x01" + b"\xff" * (128 - 3 - len(digest_info)) + b"\x00" + digest_info
    nums = rsa_key.private_numbers()
    sig = pow(int.from_bytes(em, "big"), nums.d, nums.public_numbers.n).to_bytes(128, "big")
    assert sign(rsa_key, msg, "SHA1") == sig


def test_wrong_key_fails(rsa_key) -> None:
    other = generate_key("rsa", 1024)
    assert not verify(other.public_key(), sign(rsa_key, b"m"), b"m")


def test_hash_names(rsa_key, dsa_key) -> None:
    assert signature_algorithm(rsa_key, "SHA-256") == "SHA256withRSA"
    assert signature_algorithm(dsa_key.public_key(), "sha1") == "SHA1withDSA"
    with pytest.raises(InvalidValue):
        sign(rsa_key, b"m", "MD5")
    with pytest.raises(InvalidValue):
        verify(rsa_key.public_key(), b"", b"m", "SHA512")
