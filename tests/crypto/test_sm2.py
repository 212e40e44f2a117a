"""SM2 (GB/T 32918) and SM3: the standard's worked examples, HS_PUBKEY in the Teleinfo IDIS
SDK's layout, challenge answers, and every malformed key refused with a clear error."""

from __future__ import annotations

import struct

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from idnode.auth.answers import (
    MacCode,
    make_public_key_answer,
    make_secret_key_answer,
    parse_public_key_answer,
    verify_public_key_answer,
    verify_secret_key_answer,
)
from idnode.crypto import keys
from idnode.crypto.sm2 import (
    SM2P256V1,
    Curve,
    SM2PrivateKey,
    SM2PublicKey,
    decode_signature,
    sm3,
)
from idnode.errors import IdnodeError, InvalidValue, UnableToAuthenticate

# GB/T 32918.2-2016 appendix A: the Fp-256 example curve, signer "ALICE123@YAHOO.COM"
TEST_CURVE = Curve(
    "gbt32918-example",
    p=0x8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3,
    a=0x787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498,
    b=0x63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A,
    n=0x8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7,
    gx=0x421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D,
    gy=0x0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2,
)
A_D = 0x128B2FA8BD433C6C068C8D803DFF79792A519A55171B1B650C23661D15897263
A_X = 0x0AE4C7798AA0F119471BEE11825BE46202BB79E2A5844495E97C04FF4DF2548A
A_Y = 0x7C0240F88F1CD4E16352A73C17B7F16F07353E53A176D684A9FE0C6BB798E857
A_ZA = "F4A38489E32B45B6F876E3AC2168CA392362DC8F23459C1D1146FC3DBFB7BC9A"
A_E = 0xB524F552CD82B8B028476E005C377FB19A87E6FC682D48BB5D42E3D9B9EFFE76
A_K = 0x6CB28D99385C175C94F94E934817663FC176D925DD72B727260DBAAE1FB2F96F
A_R = 0x40F1EC59F793D9F49E09DCEF49130D4194F79FB1EED2CAA55BACDB49C4E755D1
A_S = 0x6FC6DAC32C5D5CF10C77DFB20F7C2EB667A457872FB09EC56327A67EC7DEEBE7

# the recommended curve (GB/T 32918.5) with the default user id, as OpenSSL's SM2 test has it
R_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
R_K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
R_R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
R_S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA

MSG = b"message digest"
# Java's SM2 PublicKey.getEncoded() starts with exactly these 27 bytes (then X, Y)
SPKI_HEADER = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004")


def lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


# --- the standard's examples -----------------------------------------------------------------


def test_sm3_standard_examples():
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert (
        sm3(b"abcd" * 16).hex()
        == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"
    )


def test_appendix_a_key_za_digest_and_signature():
    key = SM2PrivateKey(A_D, TEST_CURVE)
    pub = key.public_key()
    assert (pub.x, pub.y) == (A_X, A_Y)
    za = pub.za(b"ALICE123@YAHOO.COM")
    assert za.hex().upper() == A_ZA
    e = int.from_bytes(sm3(za, MSG), "big")
    assert e == A_E
    assert key.sign_digest(e, A_K) == (A_R, A_S)
    assert pub.verify_digest(e, A_R, A_S)
    assert not pub.verify_digest(e, A_R, A_S ^ 1)
    assert not pub.verify_digest(e ^ 1, A_R, A_S)


def test_recommended_curve_default_user_id():
    key = SM2PrivateKey(R_D)
    pub = key.public_key()
    e = int.from_bytes(sm3(pub.za(), MSG), "big")  # ZA with "1234567812345678"
    assert pub.za() == pub.za(b"1234567812345678")
    assert key.sign_digest(e, R_K) == (R_R, R_S)
    # and the DER signature of it verifies through the public API (SM3withSM2 over MSG)
    der = encode_dss_signature(R_R, R_S)
    assert pub.verify(der, MSG)
    assert pub.verify(R_R.to_bytes(32, "big") + R_S.to_bytes(32, "big"), MSG)  # plain r||s
    assert not pub.verify(der, MSG + b".")
    assert not pub.verify(der, MSG, user_id=b"ALICE123@YAHOO.COM")


def test_sign_verify_round_trip_and_tampering():
    key = keys.generate_key("sm2")
    pub = key.public_key()
    sig = keys.sign(key, b"nonce||digest")
    assert keys.verify(pub, sig, b"nonce||digest")
    assert not keys.verify(pub, sig, b"nonce||digesT")
    r, s = decode_signature(sig)
    assert not keys.verify(pub, encode_dss_signature(r, (s + 1) % SM2P256V1.n), b"nonce||digest")
    assert not keys.verify(pub, sig[:-1], b"nonce||digest")  # truncated DER
    assert not keys.verify(pub, b"", b"nonce||digest")
    assert not keys.verify(pub, encode_dss_signature(SM2P256V1.n, s), b"nonce||digest")
    other = keys.generate_key("sm2").public_key()
    assert not keys.verify(other, sig, b"nonce||digest")
    assert keys.signature_algorithm(key, "SHA256") == "SM3withSM2"
    assert keys.default_hash(key) == "SM3"


# --- HS_PUBKEY and key files --------------------------------------------------------------------


def test_hs_pubkey_layout_is_the_teleinfo_sdks():
    key = SM2PrivateKey(R_D)
    data = keys.encode_public_key(key)
    spki = (
        SPKI_HEADER
        + key.public_key().x.to_bytes(32, "big")
        + key.public_key().y.to_bytes(32, "big")
    )
    assert data == lp(b"SM2_PUB_KEY") + b"\x00\x00" + lp(spki)
    assert keys.decode_public_key(data) == key.public_key()
    assert keys.key_algorithm(keys.decode_public_key(data)) == "SM2"


def test_hs_pubkey_round_trip_generated():
    key = keys.generate_key("sm2")
    pub = keys.decode_public_key(keys.encode_public_key(key))
    sig = keys.sign(key, b"x")
    assert keys.verify(pub, sig, b"x")


def test_compressed_point_is_read():
    pub = SM2PrivateKey(R_D).public_key()
    compressed = bytes([2 + (pub.y & 1)]) + pub.x.to_bytes(32, "big")
    assert SM2PublicKey.from_point_bytes(compressed) == pub


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d[:-1], id="truncated"),
        pytest.param(lambda d: d[:-20], id="truncated-more"),
        pytest.param(lambda d: d + b"\x00", id="trailing"),
        pytest.param(lambda d: d[:30], id="truncated-header"),
    ],
)
def test_truncated_or_padded_hs_pubkey_is_refused(mutate):
    data = keys.encode_public_key(keys.generate_key("sm2"))
    with pytest.raises(IdnodeError):
        keys.decode_public_key(mutate(data))


def _hs_sm2(spki: bytes) -> bytes:
    return lp(b"SM2_PUB_KEY") + b"\x00\x00" + lp(spki)


def test_truncated_spki_inside_a_well_framed_value():
    spki = SM2PrivateKey(R_D).public_key().spki_der()
    for cut in (1, 10, 40, 90):
        with pytest.raises(InvalidValue):
            keys.decode_public_key(_hs_sm2(spki[:cut]))


def test_point_not_on_curve_is_refused():
    pub = SM2PrivateKey(R_D).public_key()
    bad = bytearray(pub.spki_der())
    bad[-1] ^= 1  # y + 1: off the curve
    with pytest.raises(InvalidValue, match="not on sm2p256v1"):
        keys.decode_public_key(_hs_sm2(bytes(bad)))
    with pytest.raises(InvalidValue, match="not on"):
        SM2PublicKey(pub.x, pub.y + 1)
    with pytest.raises(InvalidValue):
        SM2PublicKey(SM2P256V1.p + 1, pub.y)  # coordinate out of the field


def test_wrong_curve_is_refused_by_name():
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    spki = p256.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(InvalidValue, match="wrong curve.*P-256"):
        keys.decode_public_key(_hs_sm2(spki))
    # an SM2 point placed under the P-256 OID is still the wrong curve
    sm2_spki = SM2PrivateKey(R_D).public_key().spki_der()
    p256_oid = bytes.fromhex("2a8648ce3d030107")
    swapped = sm2_spki.replace(bytes.fromhex("2a811ccf5501822d"), p256_oid)
    with pytest.raises(InvalidValue, match="wrong curve"):
        keys.decode_public_key(_hs_sm2(swapped))


def test_private_key_forms_round_trip(tmp_path):
    key = keys.generate_key("sm2")
    pem = keys.private_key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert keys.private_key_from_pem(pem).d == key.d
    # HSJ key file form, with and without a passphrase
    assert keys.decode_private_key_file(keys.encode_private_key_file(key)).d == key.d
    enc = keys.encode_private_key_file(key, "s3cret")
    assert keys.decode_private_key_file(enc, "s3cret").d == key.d
    with pytest.raises(InvalidValue, match="passphrase"):
        keys.decode_private_key_file(enc, "wrong")
    assert keys.encode_private_key(key).startswith(lp(b"SM2_PRIV_KEY"))
    with pytest.raises(InvalidValue, match="HSJ key file"):
        keys.private_key_to_pem(key, "pw")
    pub_pem = keys.public_key_to_pem(key)
    assert keys.public_key_from_pem(pub_pem) == key.public_key()


def test_private_key_with_mismatched_public_point_is_refused():
    key = SM2PrivateKey(R_D)
    der = bytearray(key.pkcs8_der())
    der[-1] ^= 1
    with pytest.raises(InvalidValue):
        SM2PrivateKey.from_pkcs8_der(bytes(der))
    with pytest.raises(InvalidValue):
        SM2PrivateKey.from_pkcs8_der(key.pkcs8_der()[:-5])
    with pytest.raises(InvalidValue):
        SM2PrivateKey(0)


def test_jwk_round_trip():
    key = keys.generate_key("sm2")
    jwk = keys.public_key_to_jwk(key)
    assert jwk["kty"] == "EC" and jwk["crv"] == "SM2"
    assert keys.public_key_from_jwk(jwk) == key.public_key()


# --- challenge answers -----------------------------------------------------------------------

NONCE = bytes(range(16))
DIGEST = bytes(range(32, 64))


def test_public_key_answer_uses_sm3_hash_id():
    key = keys.generate_key("sm2")
    answer = make_public_key_answer(key, NONCE, DIGEST, "SHA256")
    hash_id, sig = parse_public_key_answer(answer)
    assert hash_id == b"SM3"
    assert key.public_key().verify(sig, NONCE + DIGEST)
    stored = keys.encode_public_key(key)
    assert verify_public_key_answer(stored, NONCE, DIGEST, answer)
    assert not verify_public_key_answer(stored, NONCE, DIGEST[:-1] + b"\x00", answer)
    relabelled = lp(b"SHA-256") + lp(sig)
    assert not verify_public_key_answer(stored, NONCE, DIGEST, relabelled)
    other = keys.encode_public_key(keys.generate_key("sm2"))
    assert not verify_public_key_answer(other, NONCE, DIGEST, answer)
    assert not verify_public_key_answer(stored, NONCE, DIGEST, answer[:-3])


def test_broken_stored_sm2_key_cannot_authenticate():
    spki = SM2PrivateKey(R_D).public_key().spki_der()
    answer = make_public_key_answer(SM2PrivateKey(R_D), NONCE, DIGEST)
    with pytest.raises(UnableToAuthenticate):
        verify_public_key_answer(_hs_sm2(spki[:50]), NONCE, DIGEST, answer)


@pytest.mark.parametrize("alg", ["SM3", "HMAC-SM3", 0x04, 0x14])
def test_sm3_secret_key_answers(alg):
    answer = make_secret_key_answer(b"pw", NONCE, DIGEST, alg)
    assert answer[0] in (MacCode.SM3, MacCode.HMAC_SM3)
    assert len(answer) == 33
    assert verify_secret_key_answer(b"pw", NONCE, DIGEST, answer)
    assert not verify_secret_key_answer(b"pX", NONCE, DIGEST, answer)
    assert not verify_secret_key_answer(b"pw", NONCE[::-1], DIGEST, answer)


def test_hmac_sm3_matches_its_definition():
    from cryptography.hazmat.primitives import hashes, hmac

    answer = make_secret_key_answer(b"key", NONCE, DIGEST, "HMAC-SM3")
    mac = hmac.HMAC(b"key", hashes.SM3())
    mac.update(NONCE + DIGEST)
    assert answer == bytes([0x14]) + mac.finalize()
    assert make_secret_key_answer(b"key", NONCE, DIGEST, "SM3") == bytes([4]) + sm3(
        b"key", NONCE + DIGEST, b"key"
    )
