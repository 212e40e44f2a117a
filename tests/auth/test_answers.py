"""Challenge answers in HSJ's byte layouts, checked against hand-computed vectors."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest

from idnode.auth.answers import (
    MacCode,
    compute_mac,
    mac_code,
    make_public_key_answer,
    make_secret_key_answer,
    parse_pbkdf2_encoding,
    verify_public_key_answer,
    verify_secret_key_answer,
)
from idnode.auth.secrets import hash_secret, java_password, pbkdf2
from idnode.codes import OpCode
from idnode.crypto.keys import encode_public_key, generate_key, sign
from idnode.errors import InvalidValue, UnableToAuthenticate
from idnode.wire.bodies import (
    ChallengeResponse,
    DigestAlgorithm,
    ResolutionRequest,
    digest_request,
)
from idnode.wire.envelope import Envelope
from idnode.wire.header import Header
from idnode.wire.message import Message, encode_header_body, make_challenge

SECRET = b"my secret key"
NONCE = bytes(range(16))
DIGEST = hashlib.sha256(b"the request").digest()
DATA = NONCE + DIGEST
SALT = bytes(range(100, 116))


def lp(data: bytes) -> bytes:
    """4-byte big-endian length + bytes (HSJ Encoder.writeByteArray)."""
    return struct.pack(">I", len(data)) + data


# --------------------------------------------------------------------- codes and names


def test_codes_are_hsj_common_hash_codes():
    # HSJ's codes plus our SM3 pair (0x04 digest, 0x14 HMAC; docs/crypto.md)
    assert [int(c) for c in MacCode] == [0, 1, 2, 3, 4, 0x12, 0x13, 0x14, 0x22]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("SHA1", MacCode.SHA1),
        ("sha-1", MacCode.SHA1),
        ("SHA", MacCode.SHA1),
        ("SHA-256", MacCode.SHA256),
        ("sha256", MacCode.SHA256),
        ("SHA2", MacCode.SHA256),
        ("HMAC-SHA1", MacCode.HMAC_SHA1),
        ("hmacsha256", MacCode.HMAC_SHA256),
        ("PBKDF2-HMAC-SHA1", MacCode.PBKDF2_HMAC_SHA1),
        ("PBKDF2WithHmacSHA1", MacCode.PBKDF2_HMAC_SHA1),
        ("MD5", MacCode.MD5),
        (0x13, MacCode.HMAC_SHA256),
    ],
)
def test_mac_code_names(name, code):
    assert mac_code(name) is code


@pytest.mark.parametrize("bad", ["SHA512", "", "RSA", 0x99, None])
def test_mac_code_unknown(bad):
    with pytest.raises(InvalidValue):
        mac_code(bad)


# --------------------------------------------------------------------- secret key vectors


def test_sha1_answer_by_hand():
    expected = b"\x02" + hashlib.sha1(SECRET + NONCE + DIGEST + SECRET).digest()
    assert make_secret_key_answer(SECRET, NONCE, DIGEST, "SHA1") == expected
    assert len(expected) == 21


def test_sha256_answer_by_hand():
    expected = b"\x03" + hashlib.sha256(SECRET + NONCE + DIGEST + SECRET).digest()
    assert make_secret_key_answer(SECRET, NONCE, DIGEST, "SHA256") == expected


def test_md5_answers_by_hand():
    md5 = hashlib.md5(SECRET + NONCE + DIGEST + SECRET).digest()
    assert make_secret_key_answer(SECRET, NONCE, DIGEST, "MD5") == b"\x01" + md5
    # the 2.0 "old format": no code byte at all
    assert make_secret_key_answer(SECRET, NONCE, DIGEST, MacCode.MD5_OLD_FORMAT) == md5


def test_hmac_answers_by_hand():
    h1 = hmac.new(SECRET, NONCE + DIGEST, hashlib.sha1).digest()
    h256 = hmac.new(SECRET, NONCE + DIGEST, hashlib.sha256).digest()
    assert make_secret_key_answer(SECRET, NONCE, DIGEST, "HMAC-SHA1") == b"\x12" + h1
    assert make_secret_key_answer(SECRET, NONCE, DIGEST, "HMAC-SHA256") == b"\x13" + h256


def test_pbkdf2_answer_by_hand():
    """HSJ doPbkdf2HmacSHA1 + constructPbkdf2Encoding, built with struct and hashlib."""
    derived = hashlib.pbkdf2_hmac("sha1", SECRET, SALT, 10000, 20)
    mac = hmac.new(derived, NONCE + DIGEST, hashlib.sha1).digest()
    expected = b"\x22" + lp(SALT) + struct.pack(">II", 10000, 160) + lp(mac)
    got = make_secret_key_answer(SECRET, NONCE, DIGEST, "PBKDF2-HMAC-SHA1", salt=SALT)
    assert got == expected
    assert len(got) == 1 + 4 + 16 + 4 + 4 + 4 + 20


def test_pbkdf2_answer_defaults_are_hsjs(rand):
    answer = make_secret_key_answer(SECRET, NONCE, DIGEST, random_bytes=rand)
    assert answer[0] == 0x22
    salt, iterations, bits, mac = parse_pbkdf2_encoding(answer[1:])
    assert (len(salt), iterations, bits, len(mac)) == (16, 10000, 160, 20)
    assert verify_secret_key_answer(SECRET, NONCE, DIGEST, answer)


def test_pbkdf2_of_rfc6070_vector():
    expected = bytes.fromhex("0c60c80f961f0e71f3a9b524af6012062fe037a6")
    assert pbkdf2("sha1", b"password", b"salt", 1, 160) == expected


def test_pbkdf2_password_bytes_as_java_sees_them():
    """HSJ casts each byte to a char; Java's PBKDF2 hashes chars as UTF-8."""
    assert java_password(b"abc") == b"abc"
    assert java_password(b"\xe9\x00\xff") == b"\xc3\xa9\x00\xc3\xbf"
    got = pbkdf2("sha1", b"\xe9", b"saltsalt", 2, 160)
    assert got == hashlib.pbkdf2_hmac("sha1", b"\xc3\xa9", b"saltsalt", 2, 20)


def test_secret_may_be_text():
    assert make_secret_key_answer("pässword", NONCE, DIGEST, "SHA1") == make_secret_key_answer(
        "pässword".encode(), NONCE, DIGEST, "SHA1"
    )


def test_request_digest_object_is_signed_without_its_algorithm_byte():
    rd = digest_request(b"header and body", DigestAlgorithm.SHA1)
    assert make_secret_key_answer(SECRET, NONCE, rd, "SHA1") == make_secret_key_answer(
        SECRET, NONCE, rd.digest, "SHA1"
    )


# --------------------------------------------------------------------- secret key verification

ALL_KINDS = ["MD5", "SHA1", "SHA256", "HMAC-SHA1", "HMAC-SHA256", "PBKDF2-HMAC-SHA1"]


@pytest.mark.parametrize("alg", ALL_KINDS)
def test_each_kind_verifies_and_fails(alg, rand):
    answer = make_secret_key_answer(SECRET, NONCE, DIGEST, alg, random_bytes=rand)
    assert verify_secret_key_answer(SECRET, NONCE, DIGEST, answer)
    assert not verify_secret_key_answer(b"wrong secret", NONCE, DIGEST, answer)
    assert not verify_secret_key_answer(SECRET, bytes(16), DIGEST, answer)
    assert not verify_secret_key_answer(SECRET, NONCE, bytes(32), answer)
    tampered = answer[:-1] + bytes([answer[-1] ^ 1])
    assert not verify_secret_key_answer(SECRET, NONCE, DIGEST, tampered)
    # the code byte is bound to the MAC: relabelling an answer does not verify
    relabelled = bytes([MacCode.SHA1 if answer[0] != MacCode.SHA1 else MacCode.MD5]) + answer[1:]
    assert not verify_secret_key_answer(SECRET, NONCE, DIGEST, relabelled)


def test_old_format_verifies_only_as_old_format():
    answer = make_secret_key_answer(SECRET, NONCE, DIGEST, MacCode.MD5_OLD_FORMAT)
    assert verify_secret_key_answer(SECRET, NONCE, DIGEST, answer, old_format=True)
    assert not verify_secret_key_answer(b"x", NONCE, DIGEST, answer, old_format=True)
    # read as the new format its first byte would be taken for a code
    assert not verify_secret_key_answer(SECRET, NONCE, DIGEST, answer)


def test_md5_code_zero_in_new_format_is_md5():
    """HSJ's verifyChallenge maps code 0 to MD5 too when the message is 2.1+."""
    md5 = hashlib.md5(SECRET + DATA + SECRET).digest()
    assert verify_secret_key_answer(SECRET, NONCE, DIGEST, b"\x00" + md5)


def test_accept_policy_narrows_codes():
    answer = make_secret_key_answer(SECRET, NONCE, DIGEST, "MD5")
    assert not verify_secret_key_answer(
        SECRET, NONCE, DIGEST, answer, accept={MacCode.SHA256, MacCode.HMAC_SHA256}
    )
    good = make_secret_key_answer(SECRET, NONCE, DIGEST, "HMAC-SHA256")
    assert verify_secret_key_answer(SECRET, NONCE, DIGEST, good, accept={MacCode.HMAC_SHA256})


@pytest.mark.parametrize(
    "answer",
    [
        b"",
        b"\x02",
        b"\x77" + bytes(20),  # unknown code
        b"\x22",  # PBKDF2 without parameters
        b"\x22" + lp(SALT) + struct.pack(">I", 10000),  # truncated
        b"\x22" + lp(SALT) + struct.pack(">II", 10000, 160) + lp(bytes(20)) + b"x",  # trailing
        b"\x22" + lp(SALT) + struct.pack(">II", 10_000_000, 160) + lp(bytes(20)),  # too costly
        b"\x22" + lp(SALT) + struct.pack(">II", 0, 160) + lp(bytes(20)),
        b"\x22" + lp(SALT) + struct.pack(">II", 1, 161) + lp(bytes(20)),
        b"\x22" + struct.pack(">I", 0xFFFFFFFF) + bytes(30),
    ],
)
def test_malformed_answers_fail_without_raising(answer):
    assert verify_secret_key_answer(SECRET, NONCE, DIGEST, answer) is False


def test_empty_stored_secret_authenticates_nobody():
    answer = make_secret_key_answer(b"", NONCE, DIGEST, "HMAC-SHA256")
    assert not verify_secret_key_answer(b"", NONCE, DIGEST, answer)


def test_compute_mac_refuses_pbkdf2():
    with pytest.raises(InvalidValue):
        compute_mac(MacCode.PBKDF2_HMAC_SHA1, DATA, SECRET)


# --------------------------------------------------------------------- hashed stored secrets


def test_hsj_hex_form_is_the_key_itself():
    """HSJ's hashed HS_SECKEY: the client answers with the hex SHA-1 as its secret."""
    stored = hash_secret(SECRET, "SHA1-HEX")
    assert stored == hashlib.sha1(SECRET).hexdigest().encode()
    for alg in ALL_KINDS:
        answer = make_secret_key_answer(stored, NONCE, DIGEST, alg, salt=SALT)
        assert verify_secret_key_answer(stored, NONCE, DIGEST, answer)
        raw_answer = make_secret_key_answer(SECRET, NONCE, DIGEST, alg, salt=SALT)
        assert not verify_secret_key_answer(stored, NONCE, DIGEST, raw_answer)


def test_pbkdf2_stored_form_verifies_matching_pbkdf2_answer(rand):
    stored = hash_secret(SECRET, "PBKDF2-HMAC-SHA1", iterations=1000, salt=SALT)
    answer = make_secret_key_answer(
        SECRET, NONCE, DIGEST, "PBKDF2-HMAC-SHA1", salt=SALT, iterations=1000
    )
    assert verify_secret_key_answer(stored, NONCE, DIGEST, answer)
    wrong = make_secret_key_answer(b"nope", NONCE, DIGEST, "PBKDF2", salt=SALT, iterations=1000)
    assert not verify_secret_key_answer(stored, NONCE, DIGEST, wrong)
    assert not verify_secret_key_answer(stored, bytes(16), DIGEST, answer)
    assert not verify_secret_key_answer(stored, NONCE, bytes(32), answer)


def test_pbkdf2_stored_form_refuses_other_parameters_and_kinds(rand):
    stored = hash_secret(SECRET, "PBKDF2-HMAC-SHA1", iterations=1000, salt=SALT)
    other_salt = make_secret_key_answer(
        SECRET, NONCE, DIGEST, "PBKDF2", salt=bytes(16), iterations=1000
    )
    other_iter = make_secret_key_answer(SECRET, NONCE, DIGEST, "PBKDF2", salt=SALT, iterations=999)
    hsj_default = make_secret_key_answer(SECRET, NONCE, DIGEST, random_bytes=rand)
    for answer in (other_salt, other_iter, hsj_default):
        assert not verify_secret_key_answer(stored, NONCE, DIGEST, answer)
    for alg in ("MD5", "SHA1", "SHA256", "HMAC-SHA1", "HMAC-SHA256"):
        answer = make_secret_key_answer(SECRET, NONCE, DIGEST, alg)
        assert not verify_secret_key_answer(stored, NONCE, DIGEST, answer)
    # nor can the stored string itself be used as a secret
    leaked = make_secret_key_answer(stored, NONCE, DIGEST, "HMAC-SHA256")
    assert not verify_secret_key_answer(stored, NONCE, DIGEST, leaked)


def test_pbkdf2_sha256_stored_form_answers_no_challenge():
    stored = hash_secret(SECRET, "PBKDF2-HMAC-SHA256", iterations=1000, salt=SALT)
    answer = make_secret_key_answer(
        SECRET, NONCE, DIGEST, "PBKDF2", salt=SALT, iterations=1000, key_bits=256
    )
    assert not verify_secret_key_answer(stored, NONCE, DIGEST, answer)


def test_damaged_stored_pbkdf2_is_unable_to_authenticate():
    answer = make_secret_key_answer(SECRET, NONCE, DIGEST, "SHA1")
    with pytest.raises(UnableToAuthenticate):
        verify_secret_key_answer(b"$pbkdf2-sha1$i=10,l=160$!!$??", NONCE, DIGEST, answer)


# --------------------------------------------------------------------- public keys


def test_public_key_answer_layout_rsa(rsa_key):
    answer = make_public_key_answer(rsa_key, NONCE, DIGEST, "SHA256")
    assert answer[:4] == struct.pack(">I", 7) and answer[4:11] == b"SHA-256"
    (sig_len,) = struct.unpack(">I", answer[11:15])
    signature = answer[15:]
    assert sig_len == len(signature) == 128
    # PKCS#1 v1.5 is deterministic: the same bytes as signing nonce||digest directly
    assert signature == sign(rsa_key, NONCE + DIGEST, "SHA256")


def test_public_key_answer_layout_sha1(rsa_key):
    answer = make_public_key_answer(rsa_key, NONCE, DIGEST, "SHA1")
    assert answer[:8] == struct.pack(">I", 4) + b"SHA1"
    assert answer[12:] == sign(rsa_key, NONCE + DIGEST, "SHA1")


@pytest.mark.parametrize("key_name", ["rsa_key", "dsa_key"])
@pytest.mark.parametrize("hash_name", ["SHA1", "SHA256"])
def test_public_key_answers_verify_and_fail(request, key_name, hash_name):
    key = request.getfixturevalue(key_name)
    pub = encode_public_key(key)
    answer = make_public_key_answer(key, NONCE, DIGEST, hash_name)
    assert verify_public_key_answer(pub, NONCE, DIGEST, answer)
    assert not verify_public_key_answer(pub, bytes(16), DIGEST, answer)
    assert not verify_public_key_answer(pub, NONCE, bytes(32), answer)
    other = generate_key("rsa", 1024) if key_name == "rsa_key" else None
    if other is not None:
        assert not verify_public_key_answer(encode_public_key(other), NONCE, DIGEST, answer)


def test_dsa_answer_fails_with_other_dsa_key(dsa_key, rsa_key):
    answer = make_public_key_answer(dsa_key, NONCE, DIGEST, "SHA256")
    assert not verify_public_key_answer(encode_public_key(rsa_key), NONCE, DIGEST, answer)


@pytest.mark.parametrize("hash_id", [b"SHA1", b"SHA-1", b"sha-1", b"\x02"])
def test_hash_ids_hsj_reads_for_sha1(rsa_key, hash_id):
    pub = encode_public_key(rsa_key)
    signature = sign(rsa_key, NONCE + DIGEST, "SHA1")
    assert verify_public_key_answer(pub, NONCE, DIGEST, lp(hash_id) + lp(signature))


@pytest.mark.parametrize("hash_id", [b"SHA-256", b"SHA256", b"\x03"])
def test_hash_ids_hsj_reads_for_sha256(dsa_key, hash_id):
    pub = encode_public_key(dsa_key)
    signature = sign(dsa_key, NONCE + DIGEST, "SHA256")
    assert verify_public_key_answer(pub, NONCE, DIGEST, lp(hash_id) + lp(signature))


def test_hash_id_must_match_the_signature(rsa_key):
    pub = encode_public_key(rsa_key)
    signature = sign(rsa_key, NONCE + DIGEST, "SHA1")
    assert not verify_public_key_answer(pub, NONCE, DIGEST, lp(b"SHA-256") + lp(signature))
    assert not verify_public_key_answer(pub, NONCE, DIGEST, lp(b"MD5") + lp(signature))


def test_trailing_bytes_ignored_like_hsj(rsa_key):
    pub = encode_public_key(rsa_key)
    answer = make_public_key_answer(rsa_key, NONCE, DIGEST)
    assert verify_public_key_answer(pub, NONCE, DIGEST, answer + b"\x00\x00")


@pytest.mark.parametrize("answer", [b"", b"\x00\x00\x00\x07SHA-256", b"\xff\xff\xff\xff", b"abc"])
def test_malformed_public_key_answers_fail(rsa_key, answer):
    assert verify_public_key_answer(encode_public_key(rsa_key), NONCE, DIGEST, answer) is False


def test_unusable_stored_public_key(rsa_key):
    answer = make_public_key_answer(rsa_key, NONCE, DIGEST)
    with pytest.raises(UnableToAuthenticate):
        verify_public_key_answer(b"garbage", NONCE, DIGEST, answer)


def test_unsupported_signature_hash(rsa_key):
    with pytest.raises(InvalidValue):
        make_public_key_answer(rsa_key, NONCE, DIGEST, "MD5")


# --------------------------------------------------------------------- with real messages


def test_answer_over_a_real_challenge(rsa_key):
    """A challenge made by the wire layer, answered and verified over its digest."""
    request = Message(
        Header(opcode=OpCode.RESOLUTION),
        ResolutionRequest("20.500/abc"),
        Envelope(major=2, minor=10, request_id=7),
    )
    challenge = make_challenge(request, NONCE)
    body = challenge.body
    assert isinstance(body, ChallengeResponse)
    assert body.digest.digest == digest_request(encode_header_body(request)).digest
    for alg in ALL_KINDS:
        answer = make_secret_key_answer(SECRET, body.nonce, body.digest, alg)
        assert verify_secret_key_answer(SECRET, NONCE, body.digest.digest, answer)
    answer = make_public_key_answer(rsa_key, body.nonce, body.digest)
    assert verify_public_key_answer(encode_public_key(rsa_key), NONCE, body.digest, answer)
