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
from idnode.wire.framing import TcpFramer
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


async def read_raw(reader: asyncio.StreamReader) -> bytes:
    envelope = await asyncio.wait_for(reader.readexactly(ENVELOPE_SIZE), 10)
    return envelope + await reader.readexactly(struct.unpack_from(">I", envelope, 16)[0])


def without_request_id(answer: bytes) -> bytes:
    return answer[:8] + answer[12:]


async def test_a_request_alone_in_its_read_is_answered_by_its_bytes(wire_node, monkeypatch):
    """A read holding one whole request is looked up by its bytes, as a datagram is (no
    framing, no envelope decoded): from the store inline, then from the cache; the answers
    are the framed path's, byte for byte but the request id."""
    framed_reads: list[bytes] = []
    feed = TcpFramer.feed
    monkeypatch.setattr(
        TcpFramer, "feed", lambda self, data: framed_reads.append(data) or feed(self, data)
    )
    cache = ResponseCache()
    handler = WireHandler(wire_node.node, cache=cache)
    port = free_port()
    server = await serve_tcp(handler, "127.0.0.1", port)
    handle = f"{PREFIX}/demo-1"
    await wire_node.node.store.fill_public_answers()  # (the node's start fills them)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        whole = request(handle, 7)
        writer.write(whole)  # alone: read inline from the store, and kept
        first = await read_raw(reader)
        assert len(cache) == 1 and cache.stats.hits == 0  # (not the full path's task)
        writer.write(request(handle, 8))  # alone: the cache, by its bytes
        second = await read_raw(reader)
        assert cache.stats.hits == 1
        assert framed_reads == []
        writer.write(whole[:11])  # in two reads: framed, then the cache by its frame
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(whole[11:])
        framed = await read_raw(reader)
        assert cache.stats.hits == 2
        cache.invalidate()
        writer.write(whole[:30])  # in two reads, nothing cached: framed, the store inline
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(whole[30:])
        computed = await read_raw(reader)
        assert struct.unpack_from(">I", first, 8)[0] == 7 == struct.unpack_from(">I", framed, 8)[0]
        assert struct.unpack_from(">I", second, 8)[0] == 8
        assert decode_header(first[ENVELOPE_SIZE:]).response_code == ResponseCode.SUCCESS
        assert framed_reads == [whole[:11], whole[11:], whole[:30], whole[30:]]
        assert first == framed == computed
        assert without_request_id(second) == without_request_id(first)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
