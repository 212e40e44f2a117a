"""TLS listeners in-process: the Handle protocol inside TLS, HTTPS and client certificates.

One node made by ``init_node(self_signed=True)`` per module; ``start_tls`` opens its TCP+TLS
and HTTPS ports in the test's loop, exactly as ``idnode serve`` does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from idnode import client
from idnode.app import open_node
from idnode.bootstrap import ADMIN_KEY_NAME, init_node
from idnode.config import Config, load_config
from idnode.crypto.certs import (
    DevPki,
    cert_pem,
    certificate_identity,
    key_pem,
    make_ca,
    make_client_cert,
    new_key,
)
from idnode.crypto.keys import load_private_key_pem
from idnode.runtime import system
from idnode.transport.http import build_app
from idnode.transport.signing import site_keys, verify_answer
from idnode.transport.tls import client_context, start_tls
from idnode.transport.wire_handler import WireHandler
from idnode.wire.site import decode_site
from tests.conftest import free_port

PREFIX = "20.500.71"
OPERATOR = f"300:0.NA/{PREFIX}"
PKI = DevPki()


@dataclass
class TlsNode:
    config: Config
    directory: Path
    site: bytes

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.config.tls.https_port}"

    def file(self, name: str) -> str:
        return str(self.directory / name)

    def ca_key(self):
        return load_private_key_pem_any(self.directory / PKI.ca_key)

    def ca_cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.directory / PKI.ca_cert).read_bytes())

    def admin_key(self):
        return load_private_key_pem((self.directory / ADMIN_KEY_NAME).read_bytes())


def load_private_key_pem_any(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


@pytest.fixture(scope="module")
def tls_template(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("tls") / "node"
    asyncio.run(
        init_node(
            directory,
            name="tls-test",
            prefixes=[PREFIX],
            demo=True,
            self_signed=True,
            https_port=free_port(),
            tls_tcp_port=free_port(),
            runtime=system(),
        )
    )
    return directory


@pytest.fixture
async def tls_node(tls_template) -> AsyncIterator[TlsNode]:
    config = load_config(tls_template, env={})
    node = await open_node(config, runtime=system())
    handler = WireHandler(node)
    http_config = uvicorn.Config(
        build_app(node), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    listeners = await start_tls(config, handler, http_config)
    try:
        yield TlsNode(config, tls_template, node.site)
    finally:
        await listeners.close()
        await node.store.close()


def _tls(node: TlsNode, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    return client_context(node.file(PKI.ca_cert), cert, key)


def _write_cert(tmp_path: Path, cert: x509.Certificate, key) -> tuple[str, str]:
    cert_file, key_file = tmp_path / "c.pem", tmp_path / "k.pem"
    cert_file.write_bytes(cert_pem(cert))
    key_file.write_bytes(key_pem(key))
    return str(cert_file), str(key_file)


def _record(url: str) -> dict:
    return {"values": [{"index": 1, "type": "URL", "data": {"format": "string", "value": url}}]}


CLIENT_CERT = {"Authorization": 'Handle clientCert="true"'}


# --- identities in certificate subjects (HSJ Rfc2253DnParser) --------------------------------


def _subject_cert(*attrs: tuple) -> x509.Certificate:
    ca_key, ca_cert = make_ca(now=dt.datetime.now(dt.UTC))
    key = new_key()
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )


def test_identity_prefers_uid_then_cn_then_o():
    from cryptography.x509.oid import NameOID as N

    both = _subject_cert((N.COMMON_NAME, "301:0.NA/cn"), (N.USER_ID, "300:0.NA/uid"))
    assert (certificate_identity(both).handle, certificate_identity(both).index) == (
        "0.NA/uid",
        300,
    )
    cn = certificate_identity(_subject_cert((N.COMMON_NAME, "300:20.500/ADMIN")))
    assert (cn.handle, cn.index) == ("20.500/ADMIN", 300)
    bare = certificate_identity(_subject_cert((N.ORGANIZATION_NAME, "20.500/ops")))
    assert (bare.handle, bare.index) == ("20.500/ops", 0)  # index 0: any HS_PUBKEY
    odd = certificate_identity(_subject_cert((N.COMMON_NAME, "ab:20.500/x")))
    assert (odd.handle, odd.index) == ("ab:20.500/x", 0)


# --- the binary protocol inside TLS ------------------------------------------------------------


async def test_certified_resolution_over_tcp_tls(tls_node):
    request = client.resolution_request(f"{PREFIX}/demo-1", certify=True)
    reply = await client.request_tcp(
        "127.0.0.1", tls_node.config.tls.tcp_port, request, ssl=_tls(tls_node)
    )
    assert reply.header.response_code == 1
    verify_answer(reply, site_keys(decode_site(tls_node.site)), request)


async def test_tls_port_refuses_plain_tcp(tls_node):
    request = client.resolution_request(f"{PREFIX}/demo-1")
    with pytest.raises(client.ClientTimeout):
        await client.request_tcp("127.0.0.1", tls_node.config.tls.tcp_port, request, timeout=1)


# --- HTTPS and client certificates -------------------------------------------------------------


async def test_https_read_without_certificate(tls_node):
    async with httpx.AsyncClient(verify=_tls(tls_node), timeout=10) as http:
        resp = await http.get(f"{tls_node.https}/api/handles/{PREFIX}/demo-1")
    assert resp.status_code == 200 and resp.json()["responseCode"] == 1


async def test_client_certificate_authenticates_the_operator(tls_node):
    ctx = _tls(tls_node, tls_node.file(PKI.admin_cert), tls_node.file(ADMIN_KEY_NAME))
    handle = f"{PREFIX}/tls-cert-1"
    async with httpx.AsyncClient(verify=ctx, timeout=10) as http:
        made = await http.put(
            f"{tls_node.https}/api/handles/{handle}",
            json=_record("https://example.com/c"),
            headers=CLIENT_CERT,
        )
        assert made.status_code == 201, made.text
        gone = await http.delete(f"{tls_node.https}/api/handles/{handle}", headers=CLIENT_CERT)
        assert gone.status_code == 200, gone.text


async def test_client_cert_header_without_certificate_is_refused(tls_node):
    async with httpx.AsyncClient(verify=_tls(tls_node), timeout=10) as http:
        resp = await http.put(
            f"{tls_node.https}/api/handles/{PREFIX}/tls-none",
            json=_record("https://example.com/n"),
            headers=CLIENT_CERT,
        )
    assert resp.status_code == 401 and "no client certificate" in resp.json()["message"]


async def test_certificate_with_another_key_is_refused(tls_node, tmp_path):
    """Issued by the trusted CA and naming the operator, but not holding the operator's key."""
    key = new_key()
    cert = make_client_cert(
        tls_node.ca_key(),
        tls_node.ca_cert(),
        OPERATOR,
        key.public_key(),
        now=dt.datetime.now(dt.UTC),
    )
    ctx = _tls(tls_node, *_write_cert(tmp_path, cert, key))
    async with httpx.AsyncClient(verify=ctx, timeout=10) as http:
        resp = await http.put(
            f"{tls_node.https}/api/handles/{PREFIX}/tls-wrong-key",
            json=_record("https://example.com/w"),
            headers=CLIENT_CERT,
        )
    assert resp.status_code == 401
    assert "not that identity's HS_PUBKEY" in resp.json()["message"]


async def test_certificate_for_a_foreign_identity_is_refused(tls_node, tmp_path):
    key = tls_node.admin_key()
    cert = make_client_cert(
        tls_node.ca_key(),
        tls_node.ca_cert(),
        "300:0.NA/99.999",
        key.public_key(),
        now=dt.datetime.now(dt.UTC),
    )
    ctx = _tls(tls_node, *_write_cert(tmp_path, cert, key))
    async with httpx.AsyncClient(verify=ctx, timeout=10) as http:
        resp = await http.delete(
            f"{tls_node.https}/api/handles/{PREFIX}/demo-1", headers=CLIENT_CERT
        )
    assert resp.status_code == 401


async def test_expired_certificate_fails_the_handshake(tls_node, tmp_path):
    key = tls_node.admin_key()
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    cert = make_client_cert(
        tls_node.ca_key(),
        tls_node.ca_cert(),
        OPERATOR,
        key.public_key(),
        days=1,
        now=long_ago,
    )
    ctx = _tls(tls_node, *_write_cert(tmp_path, cert, key))
    async with httpx.AsyncClient(verify=ctx, timeout=10) as http:
        with pytest.raises(httpx.TransportError):
            await http.get(f"{tls_node.https}/api/handles/{PREFIX}/demo-1")


async def test_certificate_from_an_untrusted_ca_fails_the_handshake(tls_node, tmp_path):
    """Self-signed by its holder (right identity, right key): not from the operator's CA."""
    key = tls_node.admin_key()
    rogue_key, rogue_ca = make_ca("rogue CA", now=dt.datetime.now(dt.UTC))
    cert = make_client_cert(
        rogue_key, rogue_ca, OPERATOR, key.public_key(), now=dt.datetime.now(dt.UTC)
    )
    ctx = _tls(tls_node, *_write_cert(tmp_path, cert, key))
    async with httpx.AsyncClient(verify=ctx, timeout=10) as http:
        with pytest.raises(httpx.TransportError):
            await http.get(f"{tls_node.https}/api/handles/{PREFIX}/demo-1")
