"""Cached answers on TCP are written as frames arrive, yet always in request order."""

from __future__ import annotations

import asyncio
import struct

from idnode.client.resolve import resolution_request
from idnode.codes import ResponseCode
from idnode.transport.response_cache import ResponseCache
from idnode.transport.tcp import serve_tcp
from idnode.transport.wire_handler import WireHandler
from idnode.wire.envelope import ENVELOPE_SIZE
from idnode.wire.header import decode_header
from idnode.wire.message import encode_message
from tests.conftest import free_port
from tests.transport.conftest import PREFIX


def request(handle: str, request_id: int) -> bytes:
    return encode_message(resolution_request(handle, request_id=request_id))


async def read_answers(reader: asyncio.StreamReader, count: int) -> list[tuple[int, int]]:
    """(request id, response code) of the next ``count`` answers, in the order they came."""
    out = []
    for _ in range(count):
        envelope = await asyncio.wait_for(reader.readexactly(ENVELOPE_SIZE), 10)
        length = struct.unpack_from(">I", envelope, 16)[0]
        payload = await reader.readexactly(length)
        out.append((struct.unpack_from(">I", envelope, 8)[0], decode_header(payload).response_code))
    return out


async def test_cached_and_computed_answers_keep_request_order(wire_node):
    cache = ResponseCache()
    handler = WireHandler(wire_node.node, cache=cache)
    port = free_port()
    server = await serve_tcp(handler, "127.0.0.1", port)
    hot, cold = f"{PREFIX}/demo-1", f"{PREFIX}/demo-2"
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request(hot, 1))  # computed, and kept
        assert await read_answers(reader, 1) == [(1, ResponseCode.SUCCESS)]
        # cached, computed (never asked), not found (computed), cached: one write
        burst = request(hot, 2) + request(cold, 3) + request(f"{PREFIX}/nope", 4)
        writer.write(burst + request(hot, 5))
        got = await read_answers(reader, 4)
        assert [rid for rid, _ in got] == [2, 3, 4, 5]
        codes = [code for _, code in got]
        assert codes[0] == codes[3] == ResponseCode.SUCCESS
        assert codes[2] == ResponseCode.HANDLE_NOT_FOUND
        assert cache.stats.hits == 2  # request 2 at once, request 5 behind the computed ones
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
