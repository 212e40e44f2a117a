"""pyhandle's certificate mode against a real ``idnode serve`` over HTTPS.

``idnode init --self-signed`` makes the development CA, the server certificate and the
operator's client certificate (``300:0.NA/<prefix>``, carrying the admin key ``init`` stored
as HS_PUBKEY). pyhandle then creates, modifies and deletes handles presenting only that
certificate, with ``Authorization: Handle clientCert="true"`` -- both of its certificate
options: ``certificate_only`` + ``private_key`` and ``certificate_and_key``.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import requests

from idnode.bootstrap import ADMIN_KEY_NAME
from idnode.crypto.certs import DevPki
from tests.conftest import IDNODE, free_port, stop_node, wait_http

pytest.importorskip("pyhandle", reason="pyhandle comes with the test extra")
from pyhandle.handleclient import RESTHandleClient  # noqa: E402

PREFIX = "20.500.89"
PKI = DevPki()


@dataclass
class TlsRunningNode:
    directory: Path
    port: int
    http_port: int
    https_port: int
    tls_port: int
    process: subprocess.Popen

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def file(self, name: str) -> str:
        return str(self.directory / name)


def start_tls_node(directory: Path, prefix: str = PREFIX) -> TlsRunningNode:
    """``idnode init --self-signed`` then ``idnode serve``, every port free."""
    port, http_port, https_port, tls_port = (free_port() for _ in range(4))
    subprocess.run(
        [
            *IDNODE,
            "init",
            str(directory),
            "--name",
            "tls-node",
            "--prefix",
            prefix,
            "--demo",
            "--udp-port",
            str(port),
            "--tcp-port",
            str(port),
            "--http-port",
            str(http_port),
            "--self-signed",
            "--https-port",
            str(https_port),
            "--tls-port",
            str(tls_port),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    proc = subprocess.Popen(
        [*IDNODE, "serve", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "IDNODE_LOG_FORMAT": "json"},
    )
    node = TlsRunningNode(directory, port, http_port, https_port, tls_port, proc)
    wait_http(f"http://127.0.0.1:{http_port}", proc)
    _wait_https(node)
    return node


def _wait_https(node: TlsRunningNode, timeout: float = 20.0) -> None:
    """HTTPS opens just after HTTP (start_tls): wait for it too."""
    ctx = ssl.create_default_context(cafile=node.file(PKI.ca_cert))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(node.https_url + "/healthz", verify=ctx, timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("HTTPS did not open")


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[TlsRunningNode]:
    running = start_tls_node(tmp_path_factory.mktemp("https") / "node")
    try:
        yield running
    finally:
        stop_node(running)  # type: ignore[arg-type]


def _client(node: TlsRunningNode, **credentials) -> RESTHandleClient:
    return RESTHandleClient(
        node.https_url,
        HTTPS_verify=node.file(PKI.ca_cert),
        handleowner=f"300:0.NA/{PREFIX}",
        **credentials,
    )


def _exercise(client: RESTHandleClient, handle: str) -> None:
    assert client.register_handle(handle, "https://example.com/1", checksum="c0ffee") == handle
    assert client.get_value_from_handle(handle, "URL") == "https://example.com/1"
    client.modify_handle_value(handle, URL="https://example.com/2", EMAIL="ops@example.com")
    record = client.retrieve_handle_record(handle)
    assert record["URL"] == "https://example.com/2" and record["EMAIL"] == "ops@example.com"
    assert client.delete_handle_value(handle, "CHECKSUM") == handle
    assert client.delete_handle(handle) == handle
    assert client.retrieve_handle_record(handle) is None


def test_pyhandle_certificate_only_and_private_key(node):
    client = _client(
        node,
        certificate_only=node.file(PKI.admin_cert),
        private_key=node.file(ADMIN_KEY_NAME),
    )
    _exercise(client, f"{PREFIX}/cert-1")


def test_pyhandle_certificate_and_key(node):
    client = _client(node, certificate_and_key=node.file(PKI.admin_cert_and_key))
    _exercise(client, f"{PREFIX}/cert-2")


def test_https_write_without_certificate_is_refused(node):
    """``clientCert="true"`` without a certificate: 401 / 402, pyhandle's auth error."""
    with httpx.Client(verify=ssl.create_default_context(cafile=node.file(PKI.ca_cert))) as http:
        resp = http.put(
            f"{node.https_url}/api/handles/{PREFIX}/nocert",
            json={"values": [{"index": 1, "type": "URL", "data": "https://example.com/x"}]},
            headers={"Authorization": 'Handle clientCert="true"'},
        )
    assert resp.status_code == 401 and resp.json()["responseCode"] == 402


def test_pyhandle_with_foreign_certificate_fails(node, tmp_path):
    import datetime as dt

    from idnode.crypto.certs import cert_pem, key_pem, make_ca, make_client_cert, new_key

    rogue_key, rogue_ca = make_ca("rogue", now=dt.datetime.now(dt.UTC))
    key = new_key()
    both = tmp_path / "rogue.pem"
    cert = make_client_cert(
        rogue_key, rogue_ca, f"300:0.NA/{PREFIX}", key.public_key(), now=dt.datetime.now(dt.UTC)
    )
    both.write_bytes(cert_pem(cert) + key_pem(key))
    client = _client(node, certificate_and_key=str(both))
    # refused in the handshake (TLS 1.3: the server's alert ends the connection)
    with pytest.raises(requests.exceptions.ConnectionError):
        client.register_handle(f"{PREFIX}/rogue", "https://example.com/r")
    assert _client(node).retrieve_handle_record(f"{PREFIX}/rogue") is None
