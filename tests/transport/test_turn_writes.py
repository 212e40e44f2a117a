"""Answers given inline are written at the end of the loop's turn, every connection's
together (``transport/turn_writes.py``), and a connection's answers keep their order.

Real sockets and the node's own protocols (TCP; HTTP through uvicorn's httptools protocol
with the cached-answer layer), served in-process so the test can see the turn's flush:
requests on eight connections sent before the loop runs arrive in one turn, and their
eight answers leave in one flush. Before, each answer was written as it was computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from idnode.client.resolve import resolution_request
from idnode.codes import ResponseCode
from idnode.transport.http_fast import CachedRestAnswers, cached_answers_protocol
from idnode.transport.limits import Limits
from idnode.transport.response_cache import ResponseCache
from idnode.transport.tcp import serve_tcp
from idnode.transport.turn_writes import FLUSH_AT, Cork, TurnWriter, turn_writer
from idnode.transport.wire_handler import WireHandler
from idnode.wire.envelope import ENVELOPE_SIZE
from idnode.wire.header import decode_header
from idnode.wire.message import encode_message
from tests.transport.conftest import PREFIX
from tests.transport.test_stored_answers import PREFIX as STORED_PREFIX
from tests.transport.test_stored_answers import node as stored_node  # noqa: F401 (fixture)
from tests.transport.test_stored_answers import url as stored_url

CONNECTIONS = 8


@pytest.fixture
def flushes(monkeypatch) -> list[list[int]]:
    """Each turn's flush: the number of answers each connection had corked."""
    seen: list[list[int]] = []
    flush = TurnWriter._flush

    def counting(self: TurnWriter) -> None:
        seen.append([len(cork) for cork in self._due])
        flush(self)

    monkeypatch.setattr(TurnWriter, "_flush", counting)
    return seen


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _accepted(
    port: int, ask: bytes, answer: Callable[..., Awaitable[Any]]
) -> list[Connection]:
    """``CONNECTIONS`` connections, each with one exchange behind it: the server has
    accepted every one and made its protocol (no waiting for that by the clock)."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONNECTIONS)]
    for reader, writer in connections:
        writer.write(ask)
        await answer(reader)
    return connections


async def _frame(reader: asyncio.StreamReader) -> bytes:
    envelope = await asyncio.wait_for(reader.readexactly(ENVELOPE_SIZE), 10)
    return envelope + await reader.readexactly(struct.unpack_from(">I", envelope, 16)[0])


async def _http_answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(head, body) of the next HTTP answer."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head, await reader.readexactly(length)


async def _no_app(scope, receive, send) -> None:
    raise AssertionError("the cached-answer layer answers these")


async def _http_server(answers: CachedRestAnswers) -> asyncio.Server:
    """uvicorn's httptools protocol with the cached-answer layer, as ``idnode serve`` has it
    (without the guard layers), on a free port."""
    config = Config(app=_no_app, lifespan="off", log_level="warning")
    config.load()
    protocol = cached_answers_protocol(answers)
    state = ServerState()
    return await asyncio.get_running_loop().create_server(
        lambda: protocol(config=config, server_state=state, app_state={}), "127.0.0.1", 0
    )


@contextlib.asynccontextmanager
async def _tcp_connections(node) -> AsyncIterator[list[Connection]]:
    """``node`` served over TCP, with ``CONNECTIONS`` connections accepted (``_accepted``)."""
    server = await serve_tcp(WireHandler(node), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        ask = encode_message(resolution_request(f"{PREFIX}/demo-1", request_id=99))
        connections = await _accepted(port, ask, _frame)
        yield connections
        for _, writer in connections:
            writer.close()
    finally:
        server.close()
        await server.wait_closed()


def _check_answered(answers: list[bytes]) -> None:
    """Each connection's answer is a success, to its own request (ids 1, 2, ...)."""
    for n, answer in enumerate(answers):
        assert struct.unpack_from(">I", answer, 8)[0] == n + 1
        assert decode_header(answer[ENVELOPE_SIZE:]).response_code == ResponseCode.SUCCESS


async def test_tcp_answers_of_one_turn_leave_in_one_flush(wire_node, flushes) -> None:
    await wire_node.node.store.fill_public_answers()  # (the node's start fills them)
    async with _tcp_connections(wire_node.node) as connections:
        flushes.clear()
        for n, (_, writer) in enumerate(connections):
            writer.write(encode_message(resolution_request(f"{PREFIX}/demo-1", request_id=n + 1)))
        answers = [await _frame(reader) for reader, _ in connections]
        _check_answered(answers)
        assert flushes == [[1] * CONNECTIONS]  # one flush, one answer from each connection


async def test_tcp_computed_answers_are_written_at_the_turns_end_too(wire_node, flushes) -> None:
    """Answers of the full path (a typed query: never inline) go through the same cork."""
    async with _tcp_connections(wire_node.node) as connections:
        flushes.clear()
        for n, (_, writer) in enumerate(connections):
            typed = resolution_request(f"{PREFIX}/demo-1", request_id=n + 1, types=("URL",))
            writer.write(encode_message(typed))
        answers = [await _frame(reader) for reader, _ in connections]
        _check_answered(answers)
        assert sum(map(sum, flushes)) == CONNECTIONS  # every answer through a turn's flush


async def test_http_answers_of_one_turn_leave_in_one_flush(wire_node, flushes) -> None:
    await wire_node.node.store.fill_public_answers()
    answers = CachedRestAnswers(ResponseCache(100), Limits.unlimited(), wire_node.node.resolver)
    server = await _http_server(answers)
    port = server.sockets[0].getsockname()[1]
    get = f"GET /api/handles/{PREFIX}/demo-1 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    try:
        connections = await _accepted(port, get, _http_answer)
        flushes.clear()
        for _, writer in connections:
            writer.write(get + get)  # two pipelined: one connection's two answers, in order
        for reader, _ in connections:
            for _ in range(2):
                head, body = await _http_answer(reader)
                assert head.startswith(b"HTTP/1.1 200 ")
                assert b'"responseCode":1' in body
        assert flushes == [[2] * CONNECTIONS]
        for _, writer in connections:
            writer.close()
    finally:
        server.close()
        await server.wait_closed()


class _Recording(asyncio.Transport):
    """A transport that keeps what is written (the cork's own rules, without sockets)."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing


async def test_a_cork_writes_at_the_turns_end_at_once_when_large_and_never_when_gone() -> None:
    writer = turn_writer()
    small, large, gone = _Recording(), _Recording(), _Recording()
    corks = [Cork(t, writer) for t in (small, large, gone)]
    corks[0].write(b"a")
    corks[0].write(b"b")
    corks[1].write(b"x" * FLUSH_AT)  # beyond what a connection may hold back: written now
    corks[2].write(b"lost")
    assert (small.written, large.written) == ([], [b"x" * FLUSH_AT])
    corks[2].drop()  # its connection went away
    await asyncio.sleep(0)
    assert small.written == [b"ab"]  # one write for the turn's answers
    assert gone.written == []
    corks[0].write(b"c")
    small.closing = True
    await asyncio.sleep(0)
    assert small.written == [b"ab"]  # a closing transport takes nothing more


async def test_http_stored_answers_read_later_are_written_by_the_protocol(
    stored_node,  # noqa: F811 (the fixture imported above: SQLite and PostgreSQL)
    flushes,
) -> None:
    """PostgreSQL's read waits, so the REST store path answers in uvicorn's cycle
    (``StoredLater``); its answer's bytes go to the protocol's cork, pipelined answers in
    order, each the full path's JSON. On SQLite the same requests are answered inline."""
    app = stored_node.app
    op = stored_node.operator
    names = [f"{STORED_PREFIX}/later-{n}" for n in range(3)]
    for n, name in enumerate(names):
        await app.admin.create_handle(op, name, [stored_url(1, f"https://later/{n}")])
    answers = CachedRestAnswers(None, Limits.unlimited(), app.resolver)
    server = await _http_server(answers)
    port = server.sockets[0].getsockname()[1]
    requests = [f"GET /api/handles/{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for n in names]
    expected = [await stored_node.full_rest(name) for name in names]
    try:
        connections = await _accepted(port, requests[0], _http_answer)
        flushes.clear()
        for _, writer in connections:
            writer.write(b"".join(requests))
        for reader, _ in connections:
            for body in expected:
                head, got = await _http_answer(reader)
                assert head.startswith(b"HTTP/1.1 200 ")
                assert got == body
        assert sum(map(sum, flushes)) == len(connections) * len(names)
        for _, writer in connections:
            writer.close()
    finally:
        server.close()
        await server.wait_closed()
