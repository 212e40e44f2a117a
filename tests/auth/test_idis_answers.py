"""SM2 challenge answers in both forms: GM/T 0009's and the IDIS SDK's."""

from __future__ import annotations

from idnode.auth.answers import (
    make_idis_sm2_answer,
    make_public_key_answer,
    verify_public_key_answer,
)
from idnode.crypto.keys import encode_public_key
from idnode.crypto.sm2 import SM2PrivateKey, sm3
from idnode.encoding import Writer

KEY = SM2PrivateKey.generate()
VALUE = encode_public_key(KEY.public_key())
NONCE, DIGEST = bytes(range(16)), bytes(range(32))
HANDLE = "88.1000.1/admin"


def test_the_standard_form_needs_no_handle():
    answer = make_public_key_answer(KEY, NONCE, DIGEST)
    assert verify_public_key_answer(VALUE, NONCE, DIGEST, answer)
    assert verify_public_key_answer(VALUE, NONCE, DIGEST, answer, signer_handle=HANDLE)


def test_the_sdk_form_signs_sm3_of_nonce_and_digest_under_the_handle():
    """``PublicKeyAuthenticationInfo``: hutool ``signHex(SM3(nonce||digest), hex(handle))``."""
    signature = KEY.sign(sm3(NONCE + DIGEST), user_id=HANDLE.encode())
    answer = Writer().bytes32(b"SM3").bytes32(signature).getvalue()
    assert verify_public_key_answer(VALUE, NONCE, DIGEST, answer, signer_handle=HANDLE)
    made = make_idis_sm2_answer(KEY, HANDLE, NONCE, DIGEST)
    assert made.startswith(b"\x00\x00\x00\x03SM3")
    assert verify_public_key_answer(VALUE, NONCE, DIGEST, made, signer_handle=HANDLE)


def test_the_sdk_form_is_bound_to_its_handle_nonce_and_key():
    answer = make_idis_sm2_answer(KEY, HANDLE, NONCE, DIGEST)
    assert not verify_public_key_answer(VALUE, NONCE, DIGEST, answer)  # no handle given
    assert not verify_public_key_answer(VALUE, NONCE, DIGEST, answer, signer_handle="88.1/x")
    assert not verify_public_key_answer(VALUE, bytes(16), DIGEST, answer, signer_handle=HANDLE)
    other = encode_public_key(SM2PrivateKey.generate().public_key())
    assert not verify_public_key_answer(other, NONCE, DIGEST, answer, signer_handle=HANDLE)
    wrong_id = Writer().bytes32(b"SHA-256").getvalue() + answer[7:]
    assert not verify_public_key_answer(VALUE, NONCE, DIGEST, wrong_id, signer_handle=HANDLE)


def test_a_handle_too_long_for_an_sm2_user_id_fails_quietly():
    answer = make_idis_sm2_answer(KEY, HANDLE, NONCE, DIGEST)
    assert not verify_public_key_answer(VALUE, NONCE, DIGEST, answer, signer_handle="x" * 9000)
