"""HTTP/1.1 pipelining in the load generator, against a small in-order server on loopback.

The server runs its own event loop in a thread, so the generator runs as in a real bench
(``runner.run`` with one process, uvloop when installed). It answers GETs the way the node
does (compact JSON, ``responseCode`` first) and can misbehave once on its first connection:
close after one answer (with or without ``Connection: close``), send a malformed answer,
or stay silent.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote

import orjson
import pytest
from typer.testing import CliRunner

from idnode import runtime
from idnode.verify.bench_cli import bench_app
from idnode.verify.engine import CLOSED, RATE, LoadSpec
from idnode.verify.results import CONNECT, ERROR_KINDS, MALFORMED, TIMEOUT
from idnode.verify.runner import run
from idnode.verify.streams import StreamConnection
from idnode.verify.workload import MISS_LABEL, KeySet, parse_mix

MIX = parse_mix("hit=70,miss=20,typed=10")
KEYS = KeySet.generated("20.500.777", 50)
CLOCK = runtime.system().clock  # the fake server answers in real time

NORMAL, CLOSE_WITH_HEADER, CLOSE_ABRUPTLY, MALFORMED_SECOND, SILENT = (
    "normal",
    "close-with-header",
    "close-abruptly",
    "malformed-second",
    "silent",
)


@dataclass
class FakeServer:
    """What the server saw: connections accepted, requests per read, requests in all."""

    port: int = 0
    misbehave: str = NORMAL
    hold: int = 1  # misbehaving connection: answer only once this many requests are in
    connections: int = 0
    reads: list[int] = field(default_factory=list)  # complete requests in each read
    requests: int = 0


def answer(head: bytes, close: bool = False) -> bytes:
    """The node's answer to ``GET /api/handles/{handle}[?type=T]``."""
    target = head.split(b" ", 2)[1].decode()
    path, _, query = target.partition("?")
    handle = unquote(path.removeprefix("/api/handles/"))
    if MISS_LABEL in handle:
        status, doc = "404 Not Found", {"responseCode": 100, "handle": handle}
    else:
        values = []
        if query.startswith("type="):
            typ = unquote(query[5:])
            values = [{"index": 1, "type": typ, "data": {"format": "string", "value": "x"}}]
        status, doc = "200 OK", {"responseCode": 1, "handle": handle, "values": values}
    body = orjson.dumps(doc)
    extra = "Connection: close\r\n" if close else ""
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class FakeHttp(asyncio.Protocol):
    """Answers complete requests in order, all answers of one read in one write."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        server.connections += 1
        self.odd = server.misbehave != NORMAL and server.connections == 1
        self.buf = bytearray()
        self.heads: list[bytes] = []  # received, not yet answered
        self.answered = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        n = 0
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            self.heads.append(bytes(self.buf[:end]))
            del self.buf[: end + 4]
            n += 1
        self.server.reads.append(n)
        self.server.requests += n
        if self.odd and len(self.heads) < self.server.hold:
            return
        self.reply()

    def reply(self) -> None:
        assert self.transport is not None
        heads, self.heads = self.heads, []
        out = []
        for head in heads:
            self.answered += 1
            mode = self.server.misbehave if self.odd else NORMAL
            if mode == SILENT:
                return
            if mode in (CLOSE_WITH_HEADER, CLOSE_ABRUPTLY):
                out.append(answer(head, close=mode == CLOSE_WITH_HEADER))
                self.transport.write(b"".join(out))
                self.transport.close()  # the requests pipelined behind go unanswered
                return
            if mode == MALFORMED_SECOND and self.answered == 2:
                out.append(b"HTTX/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            else:
                out.append(answer(head))
        self.transport.write(b"".join(out))


@contextmanager
def fake_server(misbehave: str = NORMAL, hold: int = 1) -> Iterator[FakeServer]:
    server = FakeServer(misbehave=misbehave, hold=hold)
    ready = threading.Event()
    box: dict[str, object] = {}

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        box["stop"] = lambda: loop.call_soon_threadsafe(stop.set_result, None)
        srv = await loop.create_server(lambda: FakeHttp(server), "127.0.0.1", 0)
        server.port = srv.sockets[0].getsockname()[1]
        ready.set()
        async with srv:
            await stop

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10), "fake server did not start"
    try:
        yield server
    finally:
        box["stop"]()  # type: ignore[operator]
        thread.join(10)


class CountingTransport:
    """Wraps a client transport to count ``write`` calls (system calls, near enough)."""

    def __init__(self, inner: asyncio.Transport, counts: list[int]) -> None:
        self._inner, self._counts = inner, counts

    def write(self, data: bytes) -> None:
        self._counts.append(data.count(b"\r\n\r\n"))  # requests in this write
        self._inner.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


@pytest.fixture
def writes(monkeypatch) -> list[int]:
    counts: list[int] = []
    made = StreamConnection.connection_made

    def counting(self: StreamConnection, transport: asyncio.BaseTransport) -> None:
        made(self, CountingTransport(transport, counts))  # type: ignore[arg-type]

    monkeypatch.setattr(StreamConnection, "connection_made", counting)
    return counts


def spec(server: FakeServer, **kw: object) -> LoadSpec:
    base: dict[str, object] = dict(keys=KEYS, mix=MIX, clock=CLOCK, duration=5.0, timeout=2.0)
    return LoadSpec(protocol="http", host="127.0.0.1", port=server.port, **{**base, **kw})


def assert_adds_up(r) -> None:
    assert r.total_sent == r.total_ok + r.total_errors
    assert r.latency.total == r.total_ok


def test_pipelined_requests_all_answered_and_corked(writes):
    with fake_server() as server:
        r = run(spec(server, pipeline=4, concurrency=16, requests=400), processes=1)
    assert_adds_up(r)
    assert r.total_sent == r.total_ok == 400, r.samples
    assert r.errors == dict.fromkeys(ERROR_KINDS, 0)
    assert server.connections == 4  # ceil(16 / 4): one slot per worker
    assert server.requests == 400
    assert max(server.reads) > 1  # requests pipelined: several arrived in one read
    # corked: several requests left in one transport.write, fewer writes than requests
    assert max(writes) > 1 and len(writes) < 400 and sum(writes) == 400


def test_pipeline_1_writes_each_request_at_once(writes):
    with fake_server() as server:
        r = run(spec(server, concurrency=4, requests=60), processes=1)
    assert r.total_ok == 60 and r.total_errors == 0, r.samples
    assert server.connections == 4
    assert writes == [1] * 60  # nothing corked, one request in flight per connection


@pytest.mark.parametrize("misbehave", [CLOSE_WITH_HEADER, CLOSE_ABRUPTLY])
def test_server_closing_mid_pipeline_fails_the_rest_and_reconnects(misbehave):
    # one connection, 4 slots: the first 4 requests go out together; the server answers
    # the first and closes, so the 3 behind it get no answer
    with fake_server(misbehave, hold=4) as server:
        r = run(spec(server, pipeline=4, concurrency=4, connections=1, requests=40), processes=1)
    assert_adds_up(r)
    assert r.total_sent == 40
    if misbehave == CLOSE_WITH_HEADER:
        assert r.errors[CONNECT] == 3, r.samples
    else:  # a worker may send once more before the close is seen
        assert r.errors[CONNECT] in (3, 4), r.samples
    assert r.total_ok == 40 - r.errors[CONNECT]  # the run went on after the close
    assert server.connections == 2  # the 4 slots of the broken connection reopened it once


def test_malformed_answer_fails_the_outstanding_requests():
    with fake_server(MALFORMED_SECOND, hold=4) as server:
        r = run(spec(server, pipeline=4, concurrency=4, connections=1, requests=40), processes=1)
    assert_adds_up(r)
    # answer 1 fine, answer 2 malformed: it and the 2 behind it cannot be matched any more
    assert r.errors[MALFORMED] == 3, r.samples
    assert r.total_ok == 37
    assert any("bad status line" in s for s in r.samples)
    assert server.connections == 2


def test_timeout_fails_every_request_on_the_connection():
    with fake_server(SILENT, hold=4) as server:
        r = run(
            spec(server, pipeline=4, concurrency=4, connections=1, requests=4, timeout=0.3),
            processes=1,
        )
    assert_adds_up(r)
    assert r.errors[TIMEOUT] == 4 and r.total_ok == 0


def test_pool_size_counts_pipeline_slots():
    def size(**kw: object) -> int:
        base: dict[str, object] = dict(host="h", port=1, keys=KEYS, mix=MIX, clock=CLOCK)
        return LoadSpec(**{"protocol": "http", **base, **kw}).pool_size()

    assert size(concurrency=16) == 16
    assert size(concurrency=16, pipeline=4) == 4
    assert size(concurrency=17, pipeline=4) == 5
    assert size(concurrency=16, pipeline=4, connections=2) == 2
    assert size(concurrency=16, pipeline=4, mode=RATE) == 64
    assert size(concurrency=16, pipeline=4, mode=CLOSED, protocol="tcp") == 16  # http only


def test_cli_pipeline_option_and_reproduce_line():
    cli = CliRunner()
    with fake_server() as server:
        target = f"127.0.0.1:{server.port}"
        base = ["run", "--http", target, "--requests", "40", "--processes", "1"]
        result = cli.invoke(bench_app, [*base, "--concurrency", "8", "--pipeline", "4"])
        plain = cli.invoke(bench_app, [*base, "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    assert "--pipeline 4" in result.output.split("reproduce:", 1)[1]
    assert plain.exit_code == 0, plain.output
    assert "--pipeline" not in plain.output.split("reproduce:", 1)[1]
    refused = cli.invoke(bench_app, ["run", "--http", "127.0.0.1:1", "--pipeline", "0"])
    assert refused.exit_code == 2 and "--pipeline" in refused.output


def test_warmup_load_is_sent_but_not_recorded():
    with fake_server() as server:
        r = run(spec(server, concurrency=4, requests=50, warmup=0.3), processes=1)
    assert r.total_sent == r.total_ok == 50  # only the recorded run counts
    assert server.requests > 50  # the warm-up reached the server too
