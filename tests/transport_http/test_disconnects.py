"""Issue 15, item 5: a client that hangs up in the middle of a request body is expected on
the Internet. Before the change each one logged 6.7 KB of traceback; now it is one line
("client ... disconnected during ...") and no traceback, on the REST and management paths.
"""

from __future__ import annotations

import socket

import httpx

from tests.conftest import eventually
from tests.transport.served import PREFIX, seeded_node_dir, serve, stop

TARGETS = [
    ("POST", "/api/mgmt/organisations", "application/json"),
    ("PUT", f"/api/handles/{PREFIX}/new", "application/json"),
    ("POST", f"/api/mgmt/imports?prefix={PREFIX}", "text/csv"),
]


def _hang_up_mid_body(host: str, port: int, method: str, path: str, kind: str) -> None:
    sock = socket.create_connection((host, port))
    try:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\n"
            f"Content-Length: 100000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"legal_name": "' + b"x" * 2000)
    finally:
        sock.close()


def test_a_client_hanging_up_mid_body_logs_one_line(tmp_path) -> None:
    node = serve(seeded_node_dir(tmp_path / "node"))
    try:
        for _ in range(3):
            for method, path, kind in TARGETS:
                _hang_up_mid_body(node.host, node.http_port, method, path, kind)
        # the node is still well and answers everyone else
        with httpx.Client(timeout=10) as client:
            eventually(lambda: client.get(f"{node.http_url}/healthz").status_code == 200, "healthz")
    finally:
        out = stop(node)
    assert "Traceback" not in out, out[-4000:]
    gone = [line for line in out.splitlines() if "disconnected during" in line]
    assert gone, out[-4000:]
    assert all(len(line) < 400 for line in gone)
