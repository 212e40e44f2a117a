"""Issue 14.4: the HTTP interface in our HS_SITE speaks the binary protocol, as HANDLE.NET's.

An HSJ client falls back to the site's HTTP interface (or takes it for admin requests) and
POSTs ``envelope || message`` as ``application/x-hdl-message`` to ``/<handle>``; it reads the
answer after the HTTP head, framed by envelopes, on while CN is set (``HandleResolver.
sendHttpOrHttpsRequest``). idnode answered 405 JSON. The client here is the independent one.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from idnode.model import URL, HandleValue
from idnode.transport.http import build_app
from tests.conftest import free_port
from tests.hsj_peer import client, codec
from tests.transport.conftest import PREFIX

TWELVE_HOURS = 43200


@pytest.fixture
async def http_port(wire_node) -> AsyncIterator[int]:
    """The node's REST app with its wire handler, on a real socket."""
    port = free_port()
    app = build_app(wire_node.node, wire=wire_node.handler)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.01)  # until uvicorn says it listens
    try:
        yield port
    finally:
        server.should_exit = True
        await task


async def post(port: int, handle: str, data: bytes, now: int, **kw):
    return await asyncio.to_thread(client.http, "127.0.0.1", port, handle, data, now=now, **kw)


async def test_resolution_and_siteinfo_over_http(wire_node, http_port):
    now = int(wire_node.clock())
    handle = f"{PREFIX}/demo-1"
    status, headers, (reply,) = await post(
        http_port, handle, codec.resolution(handle, request_id=51), now
    )
    assert status == 200 and headers["content-type"] == codec.HDL_MIME_TYPE
    assert (reply.request_id, reply.code) == (51, codec.RC_SUCCESS)
    assert reply.expiration == now + TWELVE_HOURS
    assert b"https://example.com/products/pump-7" in reply.body
    status, _, (site,) = await post(http_port, "", codec.get_site_info(request_id=52), now)
    assert (status, site.code, site.opcode) == (200, codec.RC_SUCCESS, codec.OC_GET_SITE_INFO)


@pytest.mark.parametrize(
    ("data", "code", "text"),
    [
        (codec.resolution(f"{PREFIX}/no-such", request_id=61), codec.RC_HANDLE_NOT_FOUND, ""),
        (codec.malformed(request_id=62), codec.RC_PROTOCOL_ERROR, ""),
        (b"\x02\x01\x00", codec.RC_PROTOCOL_ERROR, "Invalid message length"),
        (codec.resolution("x/y", request_id=63)[:30], codec.RC_PROTOCOL_ERROR, "Expecting"),
    ],
    ids=["not found", "malformed", "no envelope", "message cut short"],
)
async def test_errors_are_handle_messages_inside_a_200(wire_node, http_port, data, code, text):
    now = int(wire_node.clock())
    status, _, (reply,) = await post(http_port, "x", data, now)
    assert (status, reply.code) == (200, code)
    assert text in reply.error_text
    assert reply.expiration == now + TWELVE_HOURS


def _answer(wire_node, challenge: codec.Reply) -> bytes:
    """HSJ's HS_PUBKEY answer: "SHA-256" then SHA256withRSA over nonce || digest."""
    data = challenge.nonce + challenge.digest
    signature = wire_node.admin_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return codec.utf8("SHA-256") + len(signature).to_bytes(4, "big") + signature


async def test_authenticated_write_and_a_streamed_listing_over_http(wire_node, http_port):
    """The admin interface: challenge, answer (a new HTTP request), then a listing long
    enough to come back in several CN-chained messages."""
    async with wire_node.client() as admin:  # seeding only
        for n in range(60):
            await admin.create_handle(f"{PREFIX}/many-{n:02d}", [HandleValue(1, URL, b"u")])
    now = int(wire_node.clock())
    operator = f"0.NA/{PREFIX}"
    name = f"{PREFIX}/over-http"
    _, _, (challenge,) = await post(
        http_port, name, codec.create_handle(name, "https://e.example/", request_id=71), now
    )
    assert challenge.code == codec.RC_AUTHENTICATION_NEEDED
    answer = codec.challenge_answer(
        operator, 300, _answer(wire_node, challenge), request_id=71, session_id=challenge.session_id
    )
    _, _, (done,) = await post(http_port, name, answer, now)
    assert (done.code, done.opcode) == (codec.RC_SUCCESS, codec.OC_CREATE_HANDLE)

    _, _, (challenge,) = await post(
        http_port, operator, codec.list_handles(operator, request_id=72), now
    )
    answer = codec.challenge_answer(
        operator, 300, _answer(wire_node, challenge), request_id=72, session_id=challenge.session_id
    )
    status, _, parts = await post(http_port, operator, answer, now)
    assert status == 200 and len(parts) >= 2
    assert all(p.flags & codec.FLAG_CN for p in parts[:-1])
    names = [h for p in parts for h in p.handles]
    assert name in names and f"{PREFIX}/many-59" in names


async def test_the_entity_is_bounded(http_port):
    head = (
        "POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-hdl-message\r\n"
        "Content-Length: 50000000\r\n\r\n"
    )

    def send_head() -> bytes:
        with socket.create_connection(("127.0.0.1", http_port), 10) as sock:
            sock.sendall(head.encode("ascii"))
            return sock.recv(4096)

    answer = await asyncio.to_thread(send_head)
    assert answer.startswith(b"HTTP/1.1 413")


async def test_rest_and_the_proxy_are_untouched(wire_node, http_port):
    now = int(wire_node.clock())
    status, headers, _ = await post(http_port, "x", b"{}", now, content_type="application/json")
    assert status == 405 and headers["content-type"] == "application/json"
