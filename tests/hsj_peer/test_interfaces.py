"""Issues 14.5 and 14.7: what HANDLE.NET's listeners do with connections and interfaces.

* A HANDLE.NET server closes a TCP connection after answering one request
  (``HdlTcpRequestHandler``), so a client that answers a challenge must open a new one:
  ``idnode admin`` and ``idnode load --server`` did not.
* Its HS_SITE publishes UDP as query-only, and a request that needs an admin interface on a
  query-only one is answered PROTOCOL_ERROR, "Received admin request on non-admin interface"
  (``Interface.canProcessMsg``). idnode publishes the same site, so it refuses the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from idnode.client.admin import AdminClient
from idnode.model import URL, HandleValue
from idnode.transport.wire_handler import WireHandler
from idnode.wire.framing import TcpFramer
from tests.hsj_peer import client, codec
from tests.transport.conftest import OPERATOR, PREFIX


@contextlib.asynccontextmanager
async def one_request_per_connection(handler: WireHandler) -> AsyncIterator[int]:
    """A TCP listener that serves one request per connection and closes, as HANDLE.NET's
    does; the answers are the node's own (the same ``WireHandler``)."""
    served: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer, frames = TcpFramer(), []
        peer = "{}:{}".format(*writer.get_extra_info("peername"))
        try:
            while not frames:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                frames = framer.feed(chunk)
            for answer in await handler.answer_messages(*frames[0], peer=peer):
                writer.write(answer)
            await writer.drain()
            served.append(1)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()
    assert served  # the listener did answer


async def test_admin_answers_the_challenge_on_a_new_connection(wire_node):
    async with one_request_per_connection(wire_node.handler) as port:
        async with AdminClient(
            "127.0.0.1", port, "tcp", OPERATOR, private_key=wire_node.admin_key
        ) as admin:
            await admin.create_handle(f"{PREFIX}/one-per-conn", [HandleValue(1, URL, b"u")])
            await admin.add_values(f"{PREFIX}/one-per-conn", [HandleValue(2, URL, b"v")])
            values = await admin.resolve(f"{PREFIX}/one-per-conn")
    assert [v.data for v in values] == [b"u", b"v"]


async def test_a_bulk_session_survives_closed_connections(wire_node):
    """``idnode load --server``: one session set up, then one connection per record."""
    async with one_request_per_connection(wire_node.handler) as port:
        async with AdminClient(
            "127.0.0.1", port, "tcp", OPERATOR, private_key=wire_node.admin_key
        ) as admin:
            await admin.open_session()
            for n in range(3):
                await admin.create_handle(f"{PREFIX}/bulk-{n}", [HandleValue(1, URL, b"u")])
    async with wire_node.client() as check:
        assert len(await check.resolve(f"{PREFIX}/bulk-2")) == 1


async def test_admin_over_udp_is_refused_as_handle_net_does(wire_node):
    now = int(wire_node.clock())
    create = codec.create_handle(f"{PREFIX}/via-udp", "https://example.com/", request_id=41)
    reply = await asyncio.to_thread(client.udp, wire_node.host, wire_node.port, create, now=now)
    assert (reply.request_id, reply.opcode) == (41, codec.OC_CREATE_HANDLE)
    assert reply.code == codec.RC_PROTOCOL_ERROR
    assert reply.error_text == "Received admin request on non-admin interface"
    listing = codec.list_handles(f"0.NA/{PREFIX}", request_id=42)
    reply = await asyncio.to_thread(client.udp, wire_node.host, wire_node.port, listing, now=now)
    assert reply.code == codec.RC_PROTOCOL_ERROR
    # the same request over TCP, the site's admin interface, is challenged
    reply = await asyncio.to_thread(client.tcp, wire_node.host, wire_node.port, create, now=now)
    assert reply.code == codec.RC_AUTHENTICATION_NEEDED and reply.nonce
    # queries stay on UDP: a restricted value is challenged there
    query = codec.resolution(f"{PREFIX}/demo-1", request_id=43, flags=0, indexes=(5,))
    reply = await asyncio.to_thread(client.udp, wire_node.host, wire_node.port, query, now=now)
    assert reply.code == codec.RC_AUTHENTICATION_NEEDED


async def test_the_admin_client_takes_writes_to_tcp_like_hsj(wire_node):
    """``protocol="udp"``: queries over UDP, writes over TCP on the same address."""
    async with wire_node.client("udp") as admin:
        await admin.create_handle(f"{PREFIX}/written", [HandleValue(1, URL, b"u")])
        assert (await admin.resolve(f"{PREFIX}/demo-1", indexes=[5]))[0].index == 5
