"""A slowloris HTTP client is cut off at the request deadline; everyone else is served."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import httpx

from tests.conftest import IDNODE, free_port, wait_http


def test_slow_http_request_is_closed_and_others_are_served(tmp_path):
    port, http_port = free_port(), free_port()
    subprocess.run(
        [
            *IDNODE,
            "init",
            str(tmp_path / "n"),
            "--prefix",
            "20.500.123",
            "--demo",
            "--udp-port",
            str(port),
            "--tcp-port",
            str(port),
            "--http-port",
            str(http_port),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "IDNODE_LIMITS_HTTP_REQUEST_TIMEOUT": "1"}
    proc = subprocess.Popen(
        [*IDNODE, "serve", str(tmp_path / "n")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        wait_http(f"http://127.0.0.1:{http_port}", proc)
        slow = socket.create_connection(("127.0.0.1", http_port), timeout=5)
        slow.sendall(b"GET /api/handles/20.500.123/demo-1 HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed_after = None
        for _ in range(40):  # one header byte every 0.1 s: never finishes the request
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
        assert closed_after < 3.5
        resp = httpx.get(f"http://127.0.0.1:{http_port}/api/handles/20.500.123/demo-1")
        assert resp.status_code == 200
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert "closing slow HTTP client" in out
