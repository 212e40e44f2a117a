"""X.509 certificates: the development CA ``idnode init --self-signed`` makes, and identities.

A Handle.Net client certificate names a Handle identity in its subject. HSJ reads it with
``X509HSTrustManager.parseIdentity``: the subject DN as RFC 2253 text, the first ``UID``
attribute, else the first ``CN``, else the first ``O``; ``"300:0.NA/20.500"`` is index 300
of ``0.NA/20.500``, a value without a leading ``digits:`` is the handle with index 0 ("any
public key of that handle"). ``certificate_identity`` does the same; RFC 2253 text lists the
RDNs last-first, so "first" there is the last RDN of the DER sequence.

What the certificate proves is checked elsewhere (``transport/tls.py``): that its chain ends
at an operator CA (the TLS handshake) and that its public key is the HS_PUBKEY the identity
names (HSJ's ``X509HSTrustManager.authenticate``).

SM2 certificates (GM/T 0015) cannot be issued here: the ``cryptography`` package neither
signs nor parses SM2-with-SM3 certificates, and Python's ``ssl`` has no TLCP suites; see
docs/security.md.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from idnode.errors import InvalidValue

DEFAULT_DAYS = 825  # what browsers accept for a server certificate
CA_DAYS = 3650
DEV_HOSTS = ("127.0.0.1", "localhost")

CertKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class CertIdentity:
    """What a certificate subject names: ``index`` 0 means "any HS_PUBKEY of ``handle``"."""

    handle: str
    index: int

    def __str__(self) -> str:
        return f"{self.index}:{self.handle}" if self.index else self.handle


def new_key() -> ec.EllipticCurvePrivateKey:
    """P-256: small, fast, and accepted by every TLS stack."""
    return ec.generate_private_key(ec.SECP256R1())


def _hash_for(key: CertKey) -> hashes.HashAlgorithm | None:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _name(common_name: str, uid: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "idnode")]
    if uid is not None:
        attrs.append(x509.NameAttribute(NameOID.USER_ID, uid))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key,
    days: int,
    now: dt.datetime,
) -> x509.CertificateBuilder:
    start = now - dt.timedelta(minutes=5)  # a peer whose clock is a little behind accepts it
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
    )


def make_ca(common_name: str = "idnode development CA", *, now: dt.datetime, days: int = CA_DAYS):
    """A self-signed CA that may sign end-entity certificates only (path length 0), valid
    from ``now`` (the caller's clock) for ``days``."""
    key = new_key()
    name = _name(common_name)
    pub = key.public_key()
    cert = (
        _builder(name, name, pub, days, now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: CertKey,
    ca_cert: x509.Certificate,
    subject: x509.Name,
    public_key,
    usage: x509.ObjectIdentifier,
    days: int,
    now: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        _builder(subject, ca_cert.subject, public_key, days, now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )


def make_server_cert(
    ca_key: CertKey,
    ca_cert: x509.Certificate,
    hosts: Iterable[str] = DEV_HOSTS,
    *,
    now: dt.datetime,
    days: int = DEFAULT_DAYS,
):
    """A TLS server certificate for ``hosts`` (IP addresses and DNS names in the SAN)."""
    hosts = list(hosts)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    key = new_key()
    cert = (
        _leaf(ca_key, ca_cert, _name(hosts[0]), key.public_key(), _SERVER_AUTH, days, now)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, _hash_for(ca_key))
    )
    return key, cert


def make_client_cert(
    ca_key: CertKey,
    ca_cert: x509.Certificate,
    identity: str,
    public_key,
    *,
    now: dt.datetime,
    days: int = DEFAULT_DAYS,
) -> x509.Certificate:
    """A client certificate naming ``identity`` ("300:0.NA/20.500") in UID and CN.

    ``public_key`` is the identity's own key (the one in its HS_PUBKEY value): the server
    refuses a certificate whose key is not the identity's, as HSJ does.
    """
    subject = _name(identity, uid=identity)
    return _leaf(ca_key, ca_cert, subject, public_key, _CLIENT_AUTH, days, now).sign(
        ca_key, _hash_for(ca_key)
    )


_SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
_CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH


# --- reading ----------------------------------------------------------------------------------


def certificate_identity(cert: x509.Certificate) -> CertIdentity:
    """The Handle identity a certificate subject names (HSJ ``Rfc2253DnParser``)."""
    found: dict[x509.ObjectIdentifier, str] = {}
    for rdn in reversed(cert.subject.rdns):  # RFC 2253 order: last RDN first
        for attr in rdn:
            if attr.oid in _IDENTITY_OIDS and attr.oid not in found:
                value = attr.value
                found[attr.oid] = value if isinstance(value, str) else value.decode("utf-8")
    text = next((found[oid] for oid in _IDENTITY_OIDS if oid in found), None)
    if not text:
        raise InvalidValue("the certificate subject names no identity (UID, CN or O)")
    index, sep, handle = text.partition(":")
    if sep and index.isascii() and index.isdigit() and handle and len(index) <= 10:
        return CertIdentity(handle, int(index))
    return CertIdentity(text, 0)


_IDENTITY_OIDS = (NameOID.USER_ID, NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME)


def load_certificate(data: bytes) -> x509.Certificate:
    """A PEM or DER certificate."""
    try:
        if data.lstrip().startswith(b"-----"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise InvalidValue(f"not a certificate: {exc}") from None


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key) -> bytes:
    """Unencrypted PKCS#8: development keys, written with mode 0600."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def spki(public_key) -> bytes:
    """SubjectPublicKeyInfo DER: one byte string per public key, whatever its algorithm."""
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --- idnode init --self-signed ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DevPki:
    """Files of a development PKI, relative to the node directory."""

    ca_cert: str = "tls/ca.pem"
    ca_key: str = "tls/ca_key.pem"
    server_cert: str = "tls/server.pem"
    server_key: str = "tls/server_key.pem"
    admin_cert: str = "tls/admin.pem"  # the operator's client certificate (admin key inside)
    admin_cert_and_key: str = "tls/admin_cert_and_key.pem"  # pyhandle's certificate_and_key


def write_dev_pki(
    directory,
    admin_identity: str | None,
    admin_key,
    hosts: Iterable[str] = DEV_HOSTS,
    *,
    now: dt.datetime,
) -> DevPki:
    """A CA, a server certificate for ``hosts`` and, for ``admin_identity``, a client
    certificate carrying the admin's own key (so it matches the HS_PUBKEY ``init`` stored).

    For development and tests: the CA key sits next to the node. Production nodes set
    ``[tls]`` to certificates from their own CA.
    """
    from pathlib import Path

    root = Path(directory)
    (root / "tls").mkdir(parents=True, exist_ok=True)
    pki = DevPki()
    ca_key, ca_cert = make_ca(now=now)
    server_key, server_cert = make_server_cert(ca_key, ca_cert, hosts, now=now)
    _write(root / pki.ca_cert, cert_pem(ca_cert), private=False)
    _write(root / pki.ca_key, key_pem(ca_key), private=True)
    _write(root / pki.server_cert, cert_pem(server_cert), private=False)
    _write(root / pki.server_key, key_pem(server_key), private=True)
    if admin_identity is not None and admin_key is not None:
        cert = make_client_cert(ca_key, ca_cert, admin_identity, admin_key.public_key(), now=now)
        _write(root / pki.admin_cert, cert_pem(cert), private=False)
        _write(root / pki.admin_cert_and_key, cert_pem(cert) + key_pem(admin_key), private=True)
    return pki


def _write(path, data: bytes, *, private: bool) -> None:
    if private:
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
    path.write_bytes(data)
