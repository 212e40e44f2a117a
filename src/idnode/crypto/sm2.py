"""SM2 signatures (GB/T 32918.2-2016) with SM3 (GB/T 32905), the ``SM3withSM2`` of JCA/BC.

Why this module exists: the ``cryptography`` package has SM3 and SM4 but no SM2 signatures,
and the pure-Python ``gmssl`` package (last release 2023, an unfixed public-key parsing bug
that spawned forks) is not maintained. So the algorithm -- about forty lines of the
standard -- is written here on top of the curve arithmetic of ``ecdsa`` (python-ecdsa,
maintained by the tlsfuzzer project), and checked against the worked examples of
GB/T 32918.2 appendix A and the recommended curve of GB/T 32918.5 (``tests/crypto``).

Signing, for a message M, user id ID (default ``1234567812345678``) and key d, P = dG::

    ZA = SM3(ENTL(ID) || ID || a || b || xG || yG || xP || yP)     (ENTL: bit length, 2 bytes)
    e  = SM3(ZA || M);  (x1, y1) = kG;  r = (e + x1) mod n;  s = (1 + d)^-1 (k - r d) mod n

The signature is DER ``SEQUENCE { INTEGER r, INTEGER s }`` as BouncyCastle and OpenSSL write
it; 64-byte ``r || s`` (hutool's "plain" encoding) is also accepted when verifying.

Key encodings (DER; PEM wraps them with the usual ``PUBLIC KEY`` / ``PRIVATE KEY`` labels):

* public: X.509 SubjectPublicKeyInfo, algorithm ``id-ecPublicKey`` (1.2.840.10045.2.1) with
  curve ``sm2p256v1`` (1.2.156.10197.1.301) and the uncompressed point ``04 || X || Y`` --
  exactly Java's ``PublicKey.getEncoded()`` for an SM2 key, which the Teleinfo IDIS SDK puts
  in HS_PUBKEY (see ``idnode.crypto.keys``);
* private: PKCS#8 around an RFC 5915 ``ECPrivateKey``; a bare SEC1 ``EC PRIVATE KEY`` is read.

Side channels: the arithmetic is plain Python integers, not constant-time. Signing happens on
the client and, for signed answers, the server; both hold their own key. Verification (what
a server does with others' keys) handles public data only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from ecdsa.ellipticcurve import CurveFp, PointJacobi

from idnode.errors import InvalidValue
from idnode.runtime import ENTROPY, Random

DEFAULT_USER_ID = b"1234567812345678"  # GB/T 35276 / GM/T 0009 default signer id
MAX_USER_ID = 8191  # ENTL is a 16-bit count of bits

OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_SM2P256V1 = "1.2.156.10197.1.301"
_CURVE_NAMES = {  # so a wrong curve is refused by name, not as "garbage"
    "1.2.840.10045.3.1.7": "NIST P-256 (prime256v1)",
    "1.3.132.0.34": "NIST P-384",
    "1.3.132.0.35": "NIST P-521",
    "1.3.132.0.10": "secp256k1",
    "1.3.36.3.3.2.8.1.1.7": "brainpoolP256r1",
}


class Curve:
    """Short Weierstrass curve y^2 = x^3 + ax + b over GF(p), cofactor 1, base point G."""

    def __init__(self, name: str, p: int, a: int, b: int, n: int, gx: int, gy: int) -> None:
        self.name, self.p, self.a, self.b, self.n = name, p, a, b, n
        self.gx, self.gy = gx, gy
        self.size = (p.bit_length() + 7) // 8
        self._fp = CurveFp(p, a, b, 1)
        self.g = PointJacobi(self._fp, gx, gy, 1, n, generator=True)

    def contains(self, x: int, y: int) -> bool:
        p = self.p
        return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x + self.a * x + self.b)) % p == 0

    def point(self, x: int, y: int) -> PointJacobi:
        return PointJacobi(self._fp, x, y, 1, self.n)

    def decompress(self, x: int, odd: bool) -> int:
        """y for x with the given parity (p = 3 mod 4 on both curves we use)."""
        p = self.p
        rhs = (x * x * x + self.a * x + self.b) % p
        y = pow(rhs, (p + 1) // 4, p)
        if (y * y) % p != rhs:
            raise InvalidValue("SM2 public key: x is not on the curve")
        return y if (y & 1) == odd else p - y


SM2P256V1 = Curve(  # GB/T 32918.5-2017
    "sm2p256v1",
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
)


def sm3(*parts: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    for part in parts:
        h.update(part)
    return h.finalize()


# --- keys ----------------------------------------------------------------------------------


class SM2PublicKey:
    """A point on an SM2 curve, checked on construction (never the identity, never off-curve)."""

    __slots__ = ("curve", "x", "y")

    def __init__(self, x: int, y: int, curve: Curve = SM2P256V1) -> None:
        if not curve.contains(x, y):
            raise InvalidValue(f"SM2 public key: the point is not on {curve.name}")
        self.curve, self.x, self.y = curve, x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SM2PublicKey) and (self.curve, self.x, self.y) == (
            other.curve,
            other.x,
            other.y,
        )

    def __hash__(self) -> int:
        return hash((self.curve.name, self.x, self.y))

    def __repr__(self) -> str:
        return f"SM2PublicKey({self.curve.name}, x={self.x:#x})"

    # encodings
    def point_bytes(self) -> bytes:
        """``04 || X || Y``, the uncompressed SEC1 point."""
        n = self.curve.size
        return b"\x04" + self.x.to_bytes(n, "big") + self.y.to_bytes(n, "big")

    @classmethod
    def from_point_bytes(cls, data: bytes, curve: Curve = SM2P256V1) -> SM2PublicKey:
        """Uncompressed (65 bytes) or compressed (33 bytes) SEC1 point."""
        data, n = bytes(data), curve.size
        if len(data) == 2 * n + 1 and data[0] == 4:
            return cls(int.from_bytes(data[1 : n + 1], "big"), int.from_bytes(data[n + 1 :], "big"))
        if len(data) == n + 1 and data[0] in (2, 3):
            x = int.from_bytes(data[1:], "big")
            if x >= curve.p:
                raise InvalidValue("SM2 public key: x is out of range")
            return cls(x, curve.decompress(x, data[0] == 3), curve)
        raise InvalidValue(
            f"SM2 public key: a point is 65 bytes (04 || X || Y) or 33 compressed, got {len(data)}"
        )

    def spki_der(self) -> bytes:
        """X.509 SubjectPublicKeyInfo, as Java's ``getEncoded()`` gives it."""
        alg = _seq(_oid(OID_EC_PUBLIC_KEY) + _oid(OID_SM2P256V1))
        return _seq(alg + _tlv(0x03, b"\x00" + self.point_bytes()))

    @classmethod
    def from_spki_der(cls, der: bytes) -> SM2PublicKey:
        body = _only(_Der(der), 0x30, "SubjectPublicKeyInfo")
        alg = body.read(0x30, "algorithm")
        _check_sm2_algorithm(alg)
        bits = body.read(0x03, "subjectPublicKey").rest()
        body.end("SubjectPublicKeyInfo")
        if not bits or bits[0] != 0:
            raise InvalidValue("SM2 public key: bad BIT STRING")
        return cls.from_point_bytes(bits[1:])

    def to_pem(self) -> bytes:
        return _pem("PUBLIC KEY", self.spki_der())

    # signatures
    def za(self, user_id: bytes = DEFAULT_USER_ID) -> bytes:
        """ZA of GB/T 32918.2 section 5.5: the signer's identity, hashed into every signature."""
        uid = bytes(user_id)
        if len(uid) > MAX_USER_ID:
            raise InvalidValue(f"SM2 user id longer than {MAX_USER_ID} bytes")
        c, n = self.curve, self.curve.size
        fields = (c.a, c.b, c.gx, c.gy, self.x, self.y)
        return sm3((len(uid) * 8).to_bytes(2, "big"), uid, *(v.to_bytes(n, "big") for v in fields))

    def verify(self, signature: bytes, data: bytes, user_id: bytes = DEFAULT_USER_ID) -> bool:
        """True for a valid signature; False for a wrong or malformed one (never raises)."""
        try:
            r, s = decode_signature(signature)
        except InvalidValue:
            return False
        e = int.from_bytes(sm3(self.za(user_id), bytes(data)), "big")
        return self.verify_digest(e, r, s)

    def verify_digest(self, e: int, r: int, s: int) -> bool:
        """Steps B4-B7 of GB/T 32918.2 section 7.1 for a precomputed e."""
        n = self.curve.n
        if not (1 <= r < n and 1 <= s < n):
            return False
        t = (r + s) % n
        if t == 0:
            return False
        q = self.curve.g.mul_add(s, self.curve.point(self.x, self.y), t)
        if not q:  # the identity
            return False
        return (e + q.x()) % n == r


class SM2PrivateKey:
    """A signing key d in [1, n-2] (1 + d must be invertible mod n)."""

    __slots__ = ("_public", "curve", "d")

    def __init__(self, d: int, curve: Curve = SM2P256V1) -> None:
        if not 1 <= d <= curve.n - 2:
            raise InvalidValue("SM2 private key out of range")
        self.curve, self.d = curve, d
        pub = curve.g * d
        self._public = SM2PublicKey(pub.x(), pub.y(), curve)

    def __repr__(self) -> str:  # never the secret
        return f"SM2PrivateKey({self.curve.name})"

    @classmethod
    def generate(cls, random_bytes: Random = ENTROPY) -> SM2PrivateKey:
        return cls(_random_scalar(SM2P256V1.n - 1, random_bytes))

    def public_key(self) -> SM2PublicKey:
        return self._public

    def sign(
        self,
        data: bytes,
        user_id: bytes = DEFAULT_USER_ID,
        *,
        random_bytes: Random = ENTROPY,
    ) -> bytes:
        """``SM3withSM2`` over ``data``; DER ``r, s``."""
        e = int.from_bytes(sm3(self._public.za(user_id), bytes(data)), "big")
        while True:
            k = _random_scalar(self.curve.n, random_bytes)
            rs = self.sign_digest(e, k)
            if rs is not None:
                return encode_dss_signature(*rs)

    def sign_digest(self, e: int, k: int) -> tuple[int, int] | None:
        """Steps A4-A6 with a given k; None when k must be drawn again (r = 0, r + k = n,
        s = 0). Public so tests can replay the standard's fixed-k examples."""
        n = self.curve.n
        x1 = (self.curve.g * k).x()
        r = (e + x1) % n
        if r == 0 or r + k == n:
            return None
        s = pow(1 + self.d, -1, n) * (k - r * self.d) % n
        return None if s == 0 else (r, s)

    # encodings
    def ec_private_key_der(self) -> bytes:
        """RFC 5915 ECPrivateKey (version 1, d, public point), curve left to the wrapper."""
        d = self.d.to_bytes(self.curve.size, "big")
        pub = _tlv(0xA1, _tlv(0x03, b"\x00" + self._public.point_bytes()))
        return _seq(_tlv(0x02, b"\x01") + _tlv(0x04, d) + pub)

    def pkcs8_der(self) -> bytes:
        alg = _seq(_oid(OID_EC_PUBLIC_KEY) + _oid(OID_SM2P256V1))
        return _seq(_tlv(0x02, b"\x00") + alg + _tlv(0x04, self.ec_private_key_der()))

    @classmethod
    def from_pkcs8_der(cls, der: bytes) -> SM2PrivateKey:
        body = _only(_Der(der), 0x30, "PrivateKeyInfo")
        if body.read(0x02, "version").rest() != b"\x00":
            raise InvalidValue("SM2 private key: unsupported PKCS#8 version")
        _check_sm2_algorithm(body.read(0x30, "privateKeyAlgorithm"))
        inner = body.read(0x04, "privateKey").rest()
        return cls.from_ec_private_key_der(inner)

    @classmethod
    def from_ec_private_key_der(cls, der: bytes) -> SM2PrivateKey:
        body = _only(_Der(der), 0x30, "ECPrivateKey")
        if body.read(0x02, "version").rest() != b"\x01":
            raise InvalidValue("SM2 private key: ECPrivateKey version must be 1")
        d_bytes = body.read(0x04, "privateKey").rest()
        claimed: bytes | None = None
        while not body.at_end():
            tag, value = body.next_any()
            if tag == 0xA0:  # parameters: must name our curve
                _check_curve_oid(_only(_Der(value), 0x06, "namedCurve").rest())
            elif tag == 0xA1:
                bits = _only(_Der(value), 0x03, "publicKey").rest()
                claimed = bits[1:] if bits[:1] == b"\x00" else None
        if not 1 <= len(d_bytes) <= SM2P256V1.size:
            raise InvalidValue("SM2 private key: the scalar has the wrong length")
        key = cls(int.from_bytes(d_bytes, "big"))
        if claimed is not None and claimed != key._public.point_bytes():
            raise InvalidValue("SM2 private key: the stored public key does not match")
        return key

    def to_pem(self) -> bytes:
        return _pem("PRIVATE KEY", self.pkcs8_der())


def private_key_from_pem(data: bytes) -> SM2PrivateKey:
    """A PKCS#8 ``PRIVATE KEY`` or SEC1 ``EC PRIVATE KEY`` PEM holding an SM2 key."""
    label, der = _unpem(data)
    if label == "PRIVATE KEY":
        return SM2PrivateKey.from_pkcs8_der(der)
    if label == "EC PRIVATE KEY":
        return SM2PrivateKey.from_ec_private_key_der(der)
    raise InvalidValue(f"SM2 private key PEM: unexpected label {label!r}")


def public_key_from_pem(data: bytes) -> SM2PublicKey:
    label, der = _unpem(data)
    if label != "PUBLIC KEY":
        raise InvalidValue(f"SM2 public key PEM: unexpected label {label!r}")
    return SM2PublicKey.from_spki_der(der)


def is_sm2_der(der: bytes) -> bool:
    """Whether a PKCS#8 / SPKI / SEC1 structure names the SM2 curve (a cheap sniff that lets
    callers route SM2 keys here and everything else to ``cryptography``)."""
    return _oid_body(OID_SM2P256V1) in bytes(der)


def decode_signature(signature: bytes) -> tuple[int, int]:
    """DER ``SEQUENCE {r, s}`` (strict: it must re-encode to the same bytes) or raw r || s."""
    sig = bytes(signature)
    if len(sig) == 64 and sig[0] != 0x30:
        return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    try:
        r, s = decode_dss_signature(sig)
    except ValueError:
        raise InvalidValue("SM2 signature is not DER SEQUENCE {r, s}") from None
    if r <= 0 or s <= 0 or encode_dss_signature(r, s) != sig:
        raise InvalidValue("SM2 signature is not canonical DER")
    return r, s


def _random_scalar(limit: int, random_bytes: Callable[[int], bytes]) -> int:
    """Uniform in [1, limit - 1] by rejection sampling."""
    nbytes = (limit.bit_length() + 7) // 8
    while True:
        k = int.from_bytes(random_bytes(nbytes), "big")
        if 1 <= k < limit:
            return k


# --- a little DER, enough for these three structures ----------------------------------------


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _len(len(value)) + value


def _seq(value: bytes) -> bytes:
    return _tlv(0x30, value)


def _oid_body(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return bytes(out)


def _oid(dotted: str) -> bytes:
    return _tlv(0x06, _oid_body(dotted))


def _oid_text(body: bytes) -> str:
    if not body:
        return "?"
    arcs, value = [body[0] // 40, body[0] % 40], 0
    for byte in body[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    return ".".join(map(str, arcs))


class _Der:
    """A bounds-checked reader over DER bytes; every failure is an ``InvalidValue``."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = bytes(data), 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def next_any(self) -> tuple[int, bytes]:
        d, i = self.data, self.pos
        if i + 2 > len(d):
            raise InvalidValue("SM2 key: truncated DER")
        tag, first = d[i], d[i + 1]
        i += 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if not 1 <= count <= 3 or i + count > len(d):
                raise InvalidValue("SM2 key: bad DER length")
            length = int.from_bytes(d[i : i + count], "big")
            i += count
        if i + length > len(d):
            raise InvalidValue("SM2 key: truncated DER")
        self.pos = i + length
        return tag, d[i : i + length]

    def read(self, tag: int, what: str) -> _Der:
        got, value = self.next_any()
        if got != tag:
            raise InvalidValue(f"SM2 key: expected {what}")
        return _Der(value)

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out

    def end(self, what: str) -> None:
        if not self.at_end():
            raise InvalidValue(f"SM2 key: trailing bytes after {what}")


def _only(reader: _Der, tag: int, what: str) -> _Der:
    inner = reader.read(tag, what)
    reader.end(what)
    return inner


def _check_curve_oid(body: bytes) -> None:
    if body != _oid_body(OID_SM2P256V1):
        dotted = _oid_text(body)
        name = _CURVE_NAMES.get(dotted, dotted)
        raise InvalidValue(f"wrong curve: key is on {name}, SM2 keys use sm2p256v1")


def _check_sm2_algorithm(alg: _Der) -> None:
    algorithm = alg.read(0x06, "algorithm OID").rest()
    if _oid_text(algorithm) != OID_EC_PUBLIC_KEY:
        raise InvalidValue(f"SM2 key: algorithm {_oid_text(algorithm)} is not id-ecPublicKey")
    if alg.at_end():
        raise InvalidValue("SM2 key: the curve is not named")
    _check_curve_oid(alg.read(0x06, "namedCurve").rest())


def _pem(label: str, der: bytes) -> bytes:
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n").encode()


def _unpem(data: bytes) -> tuple[str, bytes]:
    text = bytes(data).decode("ascii", "replace").strip()
    first, _, rest = text.partition("\n")
    if not (first.startswith("-----BEGIN ") and first.endswith("-----")):
        raise InvalidValue("not a PEM block")
    label = first[len("-----BEGIN ") : -5]
    end = f"-----END {label}-----"
    if end not in rest:
        raise InvalidValue("PEM block is not terminated")
    body = rest.split(end, 1)[0]
    if ":" in body:
        raise InvalidValue("encrypted (Proc-Type) PEM is not supported for SM2 keys")
    try:
        return label, base64.b64decode("".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValue("PEM block has invalid base64") from None
