"""Connections cannot exhaust the node (issue 15, item 2), and request heads are bounded
(item 3): per-address caps on the HTTP listener as on TCP, one budget for the process below
its descriptor limit (the longest-idle connection gives way to a newcomer), requests being
answered -- not sockets held -- counted against ``http_max_concurrency``, and 414/431 for
oversized request lines and heads on the HTTP path actually used (uvicorn's httptools).

Against the code before the change: a ninth connection from one address was served, held
sockets made /healthz answer 503, a full budget closed nothing, and an 8 MiB header got 200.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from idnode.transport.connections import ConnectionBudget, fd_budget
from tests.conftest import RunningNode, eventually
from tests.transport.served import MiB, connect, open_fds, seeded_node_dir, send_until_refused
from tests.transport.served import serve as serve_node
from tests.transport.served import stop as stop_node

BUDGET = 40
LIMITS = {
    "IDNODE_LIMITS_EXEMPT": "",
    "IDNODE_LIMITS_HTTP_MAX_CONNECTIONS_PER_IP": "8",
    "IDNODE_LIMITS_TCP_MAX_CONNECTIONS_PER_IP": "8",
    "IDNODE_LIMITS_HTTP_MAX_CONCURRENCY": "20",
    "IDNODE_LIMITS_MAX_CONNECTIONS": str(BUDGET),
}


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[RunningNode]:
    directory = seeded_node_dir(tmp_path_factory.mktemp("connections") / "node")
    running = serve_node(directory, LIMITS)
    yield running
    stop_node(running)


def _get(node: RunningNode, source: str, path: str = "/healthz", extra: bytes = b"") -> bytes:
    """One request on a new connection; the response's first bytes (b"" if closed)."""
    with connect(node, source, node.http_port) as sock:
        sock.settimeout(10)
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: n\r\n" + extra + b"\r\n")
        try:
            return sock.recv(65536)
        except ConnectionResetError:
            return b""


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (waits for it: an open socket times out)."""
    sock.settimeout(10)
    try:
        sock.recv(65536)  # b"" once closed: an idle connection is sent nothing else
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def _half_sent(node: RunningNode, source: str) -> socket.socket:
    sock = connect(node, source, node.http_port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: n\r\n")  # the head never ends
    return sock


# -- the budget itself ---------------------------------------------------------------------


class Conn:
    def __init__(self, busy: bool = False) -> None:
        self.is_busy, self.evicted = busy, False

    def busy(self) -> bool:
        return self.is_busy

    def evict(self) -> None:
        self.evicted = True


def test_fd_budget_keeps_headroom() -> None:
    assert fd_budget(1024) == 1024 - 102
    assert fd_budget(200) == 200 - 64
    assert ConnectionBudget(10**9).total == fd_budget()  # never above the descriptor limit


def test_budget_caps_per_address_and_evicts_the_longest_idle() -> None:
    budget = ConnectionBudget(3)
    a, b, c = Conn(), Conn(busy=True), Conn()
    ta, tb, tc = (budget.admit(x, "tcp", "10.0.0.1", 3) for x in (a, b, c))
    assert None not in (ta, tb, tc)
    assert budget.admit(Conn(), "tcp", "10.0.0.1", 3) is None  # its address's cap
    budget.active(ta)  # a completed a request: c is now the longest idle, b is busy
    newcomer = budget.admit(Conn(), "http", "10.0.0.2", 3)
    assert newcomer is not None and c.evicted and not a.evicted and not b.evicted
    assert len(budget) == 3 and budget.evicted == 1
    a.is_busy = True
    budget.release(newcomer)
    budget.admit(Conn(busy=True), "http", "10.0.0.2", 3)
    assert budget.admit(Conn(), "http", "10.0.0.3", 3) is None  # everyone busy: refused
    budget.release(tb)
    budget.release(tb)  # idempotent
    assert budget.count("tcp", "10.0.0.1") == 1


# -- a real node -----------------------------------------------------------------------------


def test_http_connections_per_address_are_capped(node) -> None:
    held = [_half_sent(node, "127.0.0.41") for _ in range(8)]
    try:
        refused = _get(node, "127.0.0.41")
        assert refused.startswith(b"HTTP/1.1 429") or refused == b""
        assert _get(node, "127.0.0.42").startswith(b"HTTP/1.1 200")  # others are served
    finally:
        for sock in held:
            sock.close()


def test_held_connections_do_not_make_everyone_503(node) -> None:
    """20 sockets with half-sent requests from three addresses (each under its cap), with
    ``http_max_concurrency = 20``: requests being answered count, held sockets do not."""
    held = [_half_sent(node, f"127.0.0.{50 + n % 3}") for n in range(21)]
    try:
        assert _get(node, "127.0.0.53").startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()


def _settled_fds(node: RunningNode) -> int:
    """The server's open descriptors once earlier tests' connections have closed."""
    readings: list[int] = []

    def steady() -> int | None:
        readings.append(open_fds(node))
        return readings[-1] if len(readings) > 3 and len(set(readings[-4:])) == 1 else None

    return eventually(steady, "the server's descriptors to settle", interval=0.2)


def test_a_full_budget_closes_the_longest_idle_connection_for_a_newcomer(node) -> None:
    base = _settled_fds(node)
    idle = [connect(node, f"127.0.0.{60 + n // 8}") for n in range(BUDGET)]  # 8 per address
    try:
        eventually(lambda: open_fds(node) >= base + BUDGET - 1, "the server to hold them")
        assert _get(node, "127.0.0.70").startswith(b"HTTP/1.1 200")  # let in all the same
        assert _closed(idle[0]), "the longest-idle connection was not closed"
        more = [connect(node, f"127.0.0.{71 + n // 8}") for n in range(BUDGET)]
        try:  # twice the budget offered: the server's descriptors stay within it
            assert _get(node, "127.0.0.80").startswith(b"HTTP/1.1 200")
            assert open_fds(node) <= base + BUDGET + 2
        finally:
            for sock in more:
                sock.close()
    finally:
        for sock in idle:
            sock.close()


# -- request heads -------------------------------------------------------------------------


def test_request_heads_within_the_limits_are_served(node) -> None:
    fields = b"".join(b"X-F%d: %s\r\n" % (n, b"v" * 140) for n in range(90))  # 13.5 KiB
    assert _get(node, "127.0.0.90", extra=fields).startswith(b"HTTP/1.1 200")


def test_oversized_heads_are_refused(node) -> None:
    big = _get(node, "127.0.0.91", extra=b"X-Big: " + b"a" * (20 * 1024) + b"\r\n")
    assert big.startswith(b"HTTP/1.1 431") and b'"responseCode"' in big
    many = _get(node, "127.0.0.92", extra=b"".join(b"X-%d: v\r\n" % n for n in range(101)))
    assert many.startswith(b"HTTP/1.1 431")
    long = _get(node, "127.0.0.93", path="/api/handles/" + "x" * 9000)
    assert long.startswith(b"HTTP/1.1 414")


def test_a_huge_header_is_cut_off_early(node) -> None:
    """An 8 MiB header, sent as fast as the server takes it: refused and closed after a few
    KiB, not read to its end (the old path read it all and answered 200)."""
    sock = connect(node, "127.0.0.94", node.http_port, SO_SNDBUF=64 * 1024)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: n\r\nX-Big: ")
        sent = send_until_refused(sock, b"a" * 65536, 8 * MiB)
        assert sent < 4 * MiB  # what kernel buffers took before the reset, at most
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 431")
    except ConnectionResetError:
        pass  # the refusal was sent; the reset of unread bytes may overtake it
    finally:
        sock.close()
