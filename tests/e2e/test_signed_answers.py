"""``idnode get --verify`` against a real ``idnode serve``, directly and through a relay that
alters answers in flight: a verified answer prints, a forged or altered one exits 1."""

from __future__ import annotations

import socket
import socketserver
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator

import pytest

from idnode.crypto.keys import generate_key, load_private_key_pem, public_key_to_pem
from tests.conftest import IDNODE, RunningNode, start_node, stop_node

PREFIX = "20.500.123"
HANDLE = f"{PREFIX}/demo-1"


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[RunningNode]:
    running = start_node(tmp_path_factory.mktemp("signed") / "node", prefix=PREFIX)
    yield running
    stop_node(running)


@pytest.fixture(scope="module")
def server_pem(node, tmp_path_factory) -> str:
    """The server's public key, obtained out of band (the strong trust anchor for --site)."""
    key = load_private_key_pem((node.directory / "server_privkey.pem").read_bytes())
    path = tmp_path_factory.mktemp("keys") / "server_pub.pem"
    path.write_bytes(public_key_to_pem(key))
    return str(path)


def get(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*IDNODE, "get", *args, "--json"], capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_verified_resolution(node, protocol):
    """--verify with the site's key fetched by get-siteinfo (trust on first use)."""
    done = get(HANDLE, "--server", f"{node.host}:{node.port}", "--protocol", protocol, "--verify")
    assert done.returncode == 0, done.stderr
    assert "https://example.com/products/pump-7" in done.stdout


def test_verified_resolution_with_site_file(node, server_pem):
    done = get(HANDLE, "--server", f"{node.host}:{node.port}", "--verify", "--site", server_pem)
    assert done.returncode == 0, done.stderr


def test_answer_signed_by_another_key_is_refused(node, tmp_path):
    other = tmp_path / "other.pem"
    other.write_bytes(public_key_to_pem(generate_key("rsa", 2048)))
    done = get(HANDLE, "--server", f"{node.host}:{node.port}", "--verify", "--site", str(other))
    assert done.returncode == 1
    assert "does not verify" in done.stderr


# --- a relay that changes answers in flight ----------------------------------------------------


def _read_message(sock: socket.socket) -> bytes:
    """One enveloped Handle message from a stream (20-byte envelope, length at 16)."""
    data = b""
    while len(data) < 20:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    total = 20 + struct.unpack(">I", data[16:20])[0]
    while len(data) < total:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _flip_value(message: bytes) -> bytes:
    if b"https://" not in message:
        return message
    at = message.index(b"https://") + 4
    return message[:at] + b"x" + message[at + 1 :]


def _strip_credential(message: bytes) -> bytes:
    payload = message[20:]
    body_length = struct.unpack(">I", payload[20:24])[0]
    kept = payload[: 24 + body_length] + b"\0\0\0\0"
    return message[:16] + struct.pack(">I", len(kept)) + kept


@pytest.fixture
def relay(node) -> Iterator[Callable[[Callable[[bytes], bytes]], int]]:
    servers: list[socketserver.ThreadingTCPServer] = []

    def start(change: Callable[[bytes], bytes]) -> int:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                request = _read_message(self.request)
                with socket.create_connection((node.host, node.port), timeout=5) as up:
                    up.sendall(request)
                    self.request.sendall(change(_read_message(up)))

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_altered_answer_is_refused(relay, server_pem):
    port = relay(_flip_value)
    args = ("--server", f"127.0.0.1:{port}", "--protocol", "tcp")
    plain = get(HANDLE, *args)
    assert plain.returncode == 0 and "httpx://example.com" in plain.stdout  # tampering works
    done = get(HANDLE, *args, "--verify", "--site", server_pem)
    assert done.returncode == 1
    assert "altered" in done.stderr and "httpx://" not in done.stdout


def test_unsigned_answer_is_refused_when_verification_was_asked(relay, server_pem):
    port = relay(_strip_credential)
    done = get(
        HANDLE,
        "--server",
        f"127.0.0.1:{port}",
        "--protocol",
        "tcp",
        "--verify",
        "--site",
        server_pem,
    )
    assert done.returncode == 1
    assert "not signed" in done.stderr
