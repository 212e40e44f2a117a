"""A slowloris HTTP client is cut off at the request deadline; everyone else is served."""

from __future__ import annotations

import socket
import time

import httpx

from tests.conftest import start_node, stop_node


def test_slow_http_request_is_closed_and_others_are_served(tmp_path):
    node = start_node(tmp_path / "n", env={"IDNODE_LIMITS_HTTP_REQUEST_TIMEOUT": "1"})
    http_port = node.http_port
    try:
        slow = socket.create_connection(("127.0.0.1", http_port), timeout=5)
        slow.sendall(b"GET /api/handles/20.500.123/demo-1 HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed_after = None
        for _ in range(300):  # one header byte every 0.1 s: never finishes the request
            try:
                slow.sendall(b"X")
                slow.settimeout(0.1)
                if slow.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
        assert closed_after is not None, "the slow client was never cut off"
        resp = httpx.get(f"http://127.0.0.1:{http_port}/api/handles/20.500.123/demo-1")
        assert resp.status_code == 200
    finally:
        out = stop_node(node)
    assert "closing slow HTTP client" in out
