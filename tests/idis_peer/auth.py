"""Challenge answers as ``core/PublicKeyAuthenticationInfo.authenticate`` makes them.

The answer is ``writeByteArray(hash id) + writeByteArray(signature)``, after the SDK checked
that the challenge's digest is the digest of the request it sent (else "Asked to sign
unidentified request!"):

* an RSA (or DSA) key signs ``nonce || digest`` with ``Util.getDefaultSigId``: SHA256withRSA
  from protocol 2.7, hash id from ``Util.getHashAlgIdFromSigId`` (``SHA-256``);
* an SM2 key (Java algorithm "EC") goes through hutool's ``SM2.signHex(SM3(nonce || digest)
  as hex, hex(user handle))``: the signed message is the 32-byte SM3 digest of
  ``nonce || digest``, the SM2 user id is the user's handle in UTF-8 (not the default
  ``1234567812345678``), the signature BouncyCastle's DER, and the hash id ``SM3``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from idnode.crypto.sm2 import SM2PrivateKey, sm3
from tests.idis_peer.codec import PUBLIC_KEY_TYPE, Reply, Request, b32, digest_of


class UnidentifiedRequest(Exception):
    """The challenge's digest is not the digest of the request the peer sent."""


@dataclass(frozen=True)
class PublicKeyAuth:
    """``PublicKeyAuthenticationInfo(userIdHandle, userIdIndex, privateKey)``."""

    handle: str
    index: int
    key: rsa.RSAPrivateKey | SM2PrivateKey

    auth_type = PUBLIC_KEY_TYPE

    def authenticate(self, challenge: Reply, request: Request) -> bytes:
        if digest_of(request, challenge.digest_type) != challenge.digest:
            raise UnidentifiedRequest("Asked to sign unidentified request!")
        data = challenge.nonce + challenge.digest
        if isinstance(self.key, SM2PrivateKey):
            signature = self.key.sign(sm3(data), user_id=self.handle.encode("utf-8"))
            hash_id = b"SM3"
        else:
            signature = self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
            hash_id = b"SHA-256"
        return b32(hash_id) + b32(signature)
