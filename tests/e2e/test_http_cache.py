"""REST answers served from the response cache by a real ``idnode serve``.

What a client must not be able to tell: a cached answer has the same status, headers (but
the date) and body as the full path's; a write is seen by the very next request; anything
personal (credentials, a session cookie) never gets a cached answer; pipelined requests are
answered in order; and the cache shows in ``/metrics``.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time

import httpx
import pytest

from tests.conftest import IDNODE, start_node, stop_node

HANDLE = "20.500.123/demo-1"
TARGETS = [
    f"/api/handles/{HANDLE}",
    f"/api/handles/{HANDLE}?type=URL",
    f"/api/handles/{HANDLE}?index=2&index=3",
    f"/api/handles/{HANDLE}?pretty",
    f"/api/handles/{HANDLE}?callback=show",
    f"/api/handles/{HANDLE}?type=NOPE",  # 200 with no values: cached as well
]


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    running = start_node(tmp_path_factory.mktemp("http-cache"))
    yield running
    stop_node(running)


def metric(node, name: str) -> float:
    text = httpx.get(node.http_url + "/metrics").text
    found = re.search(rf'^{name}{{face="http"}} (\S+)$', text, re.M)
    assert found, f"{name} missing from /metrics"
    return float(found.group(1))


def raw_exchange(node, request: bytes, answers: int) -> list[tuple[bytes, dict, bytes]]:
    """Send ``request`` bytes on one connection, read ``answers`` responses in order."""
    with socket.create_connection((node.host, node.http_port), timeout=5) as sock:
        sock.sendall(request)
        buf = b""
        out = []
        while len(out) < answers:
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                assert chunk, "connection closed early"
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            status, *lines = head.split(b"\r\n")
            headers = dict(line.lower().split(b": ", 1) for line in lines)
            length = int(headers[b"content-length"])
            while len(buf) < length:
                buf += sock.recv(65536)
            out.append((status, headers, buf[:length]))
            buf = buf[length:]
        return out


def get(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: t\r\n\r\n".encode()


def without_date(answer: tuple[bytes, dict, bytes]) -> tuple[bytes, dict, bytes]:
    status, headers, body = answer
    return status, {k: v for k, v in headers.items() if k != b"date"}, body


def test_cached_answers_are_the_full_paths_answers(node):
    hits_before = metric(node, "idnode_response_cache_hits_total")
    for target in TARGETS:
        # the first is computed and kept (the cache has room), the rest are cache hits
        answers = [without_date(raw_exchange(node, get(target), 1)[0]) for _ in range(4)]
        assert answers[0][0] == b"HTTP/1.1 200 OK", target
        assert all(a == answers[0] for a in answers), target
    assert metric(node, "idnode_response_cache_hits_total") - hits_before == 3 * len(TARGETS)
    assert metric(node, "idnode_response_cache_entries") >= len(TARGETS)


def test_pipelined_requests_are_answered_in_order(node):
    cached, missing = TARGETS[1], "/api/handles/20.500.123/no-such-handle-yet"
    for _ in range(2):
        raw_exchange(node, get(cached), 1)
        raw_exchange(node, get(TARGETS[0]), 1)
    hits = metric(node, "idnode_response_cache_hits_total")
    # the 404 is computed (first time asked); the two cached answers behind it wait for it
    answers = raw_exchange(node, get(cached) + get(missing) + get(cached) + get(TARGETS[0]), 4)
    assert [a[0].split()[1] for a in answers] == [b"200", b"404", b"200", b"200"]
    assert metric(node, "idnode_response_cache_hits_total") - hits == 3
    later, last = "/api/handles/20.500.123/not-yet-b", "/api/handles/20.500.123/not-yet-c"
    again = raw_exchange(node, get(later) + get(cached) * 2 + get(last) + get(cached), 5)
    assert [a[0].split()[1] for a in again] == [b"404", b"200", b"200", b"404", b"200"]
    assert b"not-yet-b" in again[0][2] and b"not-yet-c" in again[3][2]
    assert again[1][2] == again[2][2] == again[4][2]
    assert answers[0][2] == answers[2][2]
    assert b'"URL"' in answers[0][2] and b'"DESC"' not in answers[0][2]
    assert b'"DESC"' in answers[3][2]


def test_credentials_never_get_a_cached_answer(node):
    target = TARGETS[0]
    for _ in range(3):
        raw_exchange(node, get(target), 1)
    bad_basic = f"GET {target} HTTP/1.1\r\nHost: t\r\nAuthorization: Basic eDp5\r\n\r\n"
    status, _, body = raw_exchange(node, bad_basic.encode(), 1)[0]
    assert status.split()[1] == b"401" and b'"responseCode":402' in body
    cookie = f"GET {target} HTTP/1.1\r\nHost: t\r\nCookie: JSESSIONID=forged\r\n\r\n"
    hits = metric(node, "idnode_response_cache_hits_total")
    raw_exchange(node, cookie.encode(), 1)
    assert metric(node, "idnode_response_cache_hits_total") == hits


def test_connection_close_is_honoured(node):
    target = TARGETS[0]
    for _ in range(3):
        raw_exchange(node, get(target), 1)
    request = f"GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
    with socket.create_connection((node.host, node.http_port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):  # ends only if the server closes
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in data.lower()


def test_a_write_is_seen_by_the_next_request(node):
    target = f"/api/handles/{HANDLE}?type=DESC"
    for _ in range(3):
        before = raw_exchange(node, get(target), 1)[0][2]
    assert b"Centrifugal pump" in before
    key = str(node.directory / "admin_privkey.pem")
    server = ["--server", f"{node.host}:{node.port}", "--protocol", "tcp"]
    auth = ["--id", f"300:0.NA/{node.prefix}", "--key", key]
    done = subprocess.run(
        [*IDNODE, "admin", "modify-value", HANDLE, "-v", "2:DESC:Pump, model P8", *server, *auth],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    # the write committed in the same process: its cache was cleared before the CLI got "ok"
    after = raw_exchange(node, get(target), 1)[0][2]
    assert b"model P8" in after and b"Centrifugal" not in after


def test_an_idle_connection_is_closed_after_cached_answers(tmp_path):
    """Cached answers skip uvicorn's keep-alive timer; the watchdog still closes the idle."""
    quick = start_node(tmp_path / "n", env={"IDNODE_LIMITS_HTTP_KEEP_ALIVE": "1"})
    try:
        target = TARGETS[0]
        for _ in range(2):
            raw_exchange(quick, get(target), 1)
        with socket.create_connection((quick.host, quick.http_port), timeout=10) as sock:
            sock.sendall(get(target) * 2)  # both answered from the cache
            started = time.monotonic()
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            waited = time.monotonic() - started
        assert data.count(b"HTTP/1.1 200 OK") == 2
        assert waited < 30, f"idle connection kept {waited:.1f} s"  # closed at all, not when
        assert metric(quick, "idnode_response_cache_hits_total") == 3
    finally:
        stop_node(quick)


def test_answers_written_together_keep_their_order_before_a_bad_request(node):
    """Cached answers to one read are written together; a 400 for garbage after them in
    the same read must still come after them."""
    target = TARGETS[1]
    for _ in range(2):
        raw_exchange(node, get(target), 1)
    answers = raw_exchange(node, get(target) * 3 + b"NOT HTTP AT ALL\r\n\r\n", 4)
    assert [a[0].split()[1] for a in answers] == [b"200", b"200", b"200", b"400"]


def test_the_proxy_redirect_is_cached_too(node):
    target = "/20.500.123/demo-1"
    hits = metric(node, "idnode_response_cache_hits_total")
    answers = [without_date(raw_exchange(node, get(target), 1)[0]) for _ in range(3)]
    assert answers[0][0] == b"HTTP/1.1 302 Found"
    assert answers[0][1][b"location"] == b"https://example.com/products/pump-7"
    assert answers[0] == answers[1] == answers[2]
    assert metric(node, "idnode_response_cache_hits_total") - hits == 2
