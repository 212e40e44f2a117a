"""Bounded memory (issue 15, item 1): a client that pipelines requests and never reads the
answers must not make the node buffer them -- over TCP (cached answers and refusals alike)
and over HTTP. The node stops reading such a connection once its unsent output is above a
bound, so the client's sends stall and the server's RSS stays flat.

Against the code before the change, the server read everything and buffered every answer:
the sends never stalled and RSS grew by hundreds of MiB (the bound below is 40 MiB).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from idnode.client.resolve import request_tcp, resolution_request
from idnode.codes import ResponseCode
from idnode.wire.message import encode_message
from tests.conftest import RunningNode, eventually
from tests.transport.served import BIG, MiB, connect, rss, seeded_node_dir, send_until_refused
from tests.transport.served import serve as serve_node
from tests.transport.served import stop as stop_node

FLOOD = 48 * MiB  # bytes of requests offered; far more than kernel buffers can absorb
GROWTH = 40 * MiB  # the most the server's RSS may grow while refusing to read them


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[RunningNode]:
    directory = seeded_node_dir(tmp_path_factory.mktemp("backpressure") / "node")
    running = serve_node(directory)
    yield running
    stop_node(running)


def _settled_rss(node: RunningNode) -> int:
    """The server's RSS once it stopped moving (two equal readings in a row)."""
    readings: list[int] = []

    def steady() -> int | None:
        readings.append(rss(node))
        return readings[-1] if len(readings) > 2 and readings[-1] == readings[-2] else None

    return eventually(steady, "the server's memory to settle", timeout=60, interval=0.5)


def _flood_tcp(node: RunningNode, source: str) -> tuple[int, int]:
    """Pipeline resolutions of a 2 KiB answer from ``source``, never reading; (sent, growth)."""
    asyncio.run(request_tcp(node.host, node.port, resolution_request(BIG)))  # cache it
    before = rss(node)
    request = encode_message(resolution_request(BIG, request_id=7))
    sock = connect(node, source, SO_RCVBUF=16 * 1024, SO_SNDBUF=64 * 1024)
    try:
        sent = send_until_refused(sock, request * (65536 // len(request)), FLOOD)
        growth = _settled_rss(node) - before
        # the node still answers everyone else meanwhile
        other = asyncio.run(request_tcp(node.host, node.port, resolution_request(BIG)))
        assert other.header.response_code == ResponseCode.SUCCESS
    finally:
        sock.close()
    return sent, growth


def test_tcp_client_that_never_reads_cached_answers_is_not_buffered(node) -> None:
    sent, growth = _flood_tcp(node, "127.0.0.1")  # exempt: every answer a cache hit
    assert sent < FLOOD, "the server kept reading a client that never reads"
    assert growth < GROWTH, f"RSS grew by {growth / MiB:.0f} MiB"


def test_tcp_rate_limited_client_refusals_are_not_buffered(node) -> None:
    sent, growth = _flood_tcp(node, "127.0.0.21")  # limited: all but 2000 answers refused
    assert sent < FLOOD, "the server kept reading a client that never reads"
    assert growth < GROWTH, f"RSS grew by {growth / MiB:.0f} MiB"


def test_http_client_that_never_reads_pipelined_answers_is_not_buffered(node) -> None:
    target = f"/api/handles/{BIG}".encode()
    request = b"GET " + target + b" HTTP/1.1\r\nHost: n\r\n\r\n"
    http_port = node.http_port
    with connect(node, "127.0.0.1", http_port) as warm:  # the first answer fills the cache
        warm.sendall(request)
        assert warm.recv(65536).startswith(b"HTTP/1.1 200")
    before = rss(node)
    sock = connect(node, "127.0.0.1", http_port, SO_RCVBUF=16 * 1024, SO_SNDBUF=64 * 1024)
    try:
        sent = send_until_refused(sock, request * (65536 // len(request)), FLOOD)
        growth = _settled_rss(node) - before
    finally:
        sock.close()
    assert sent < FLOOD, "the server kept reading a client that never reads"
    assert growth < GROWTH, f"RSS grew by {growth / MiB:.0f} MiB"
