"""SM2 public-key encryption (``idnode.crypto.sm2_cipher``) against the standard's example.

GB/T 32918.4-2016 appendix A.2 (the Fp-256 example curve of part 2, the message
"encryption standard", a fixed k): the ciphertext below is the one the standard prints, in the
2010 order C1 || C2 || C3 (BouncyCastle's ``SM2Test`` checks the same bytes). The IDIS SDK
decrypts session keys in the 2016 order C1 || C3 || C2 (hutool's default).
"""

from __future__ import annotations

import pytest

from idnode.crypto.sm2 import SM2P256V1, SM2PrivateKey
from idnode.crypto.sm2_cipher import C1C2C3, decrypt, encrypt
from idnode.errors import InvalidValue
from idnode.runtime import SeededRandom
from tests.crypto.test_sm2 import TEST_CURVE

B_D = 0x1649AB77A00637BD5E2EFE283FBF353534AA7F7CB89463F208DDBC2920BB0DA0
K = 0x4C62EEFD6ECFC2B95B92FD6C3D9575148AFA17425546D49018E5388D49DD7B4F
MESSAGE = b"encryption standard"
C1 = bytes.fromhex(
    "04245C26FB68B1DDDDB12C4B6BF9F2B6D5FE60A383B0D18D1C4144ABF17F6252E7"
    "76CB9264C2A7E88E52B19903FDC47378F605E36811F5C07423A24B84400F01B8"
)
C2 = bytes.fromhex("650053A89B41C418B0C3AAD00D886C00286467")
C3 = bytes.fromhex("9C3D7360C30156FAB7C80A0276712DA9D8094A634B766D3A285E07480653426D")


def test_the_standards_example_in_both_orders():
    key = SM2PrivateKey(B_D, TEST_CURVE)
    old = encrypt(key.public_key(), MESSAGE, order=C1C2C3, k=K)
    assert old == C1 + C2 + C3
    assert encrypt(key.public_key(), MESSAGE, k=K) == C1 + C3 + C2  # the default: C1C3C2
    assert decrypt(key, C1 + C3 + C2) == MESSAGE
    assert decrypt(key, C1 + C2 + C3, order=C1C2C3) == MESSAGE


def test_round_trip_on_the_recommended_curve():
    key = SM2PrivateKey.generate(SeededRandom(7))
    assert key.curve is SM2P256V1
    plain = b"\x00\x00\x00\x04" + bytes(16)  # what a session setup sends: SM4 and its key
    sealed = encrypt(key.public_key(), plain, random_bytes=SeededRandom(8))
    assert decrypt(key, sealed) == plain


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-1] + bytes([c[-1] ^ 1]),  # C2 altered: C3 no longer matches
        lambda c: c[:40] + bytes([c[40] ^ 1]) + c[41:],  # C1 moved off the curve
        lambda c: b"\x02" + c[1:],  # a compressed C1 is not what the SDK sends
        lambda c: c[:96],  # too short to hold C1 and C3
    ],
)
def test_altered_or_malformed_ciphertexts_are_refused(mangle):
    key = SM2PrivateKey(B_D, TEST_CURVE)
    with pytest.raises(InvalidValue):
        decrypt(key, mangle(C1 + C3 + C2))


def test_another_key_cannot_read_it():
    with pytest.raises(InvalidValue):
        decrypt(SM2PrivateKey(B_D + 1, TEST_CURVE), C1 + C3 + C2)
