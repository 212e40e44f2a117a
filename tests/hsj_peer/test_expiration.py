"""Issue 14.1: every answer carries an expiration time ahead, as HSJ's resolver demands.

HSJ's ``HandleResolver`` refuses any answer whose expiration has passed -- 0 included -- as
``GOT_EXPIRED_MESSAGE``, before it looks at the response code. HSJ servers stamp every
message twelve hours ahead (``AbstractMessage``: ``now + 43200``); so must idnode, on errors,
challenges and session refusals as on successes, and on answers its cache keeps.
"""

from __future__ import annotations

import asyncio

import pytest

from idnode.transport.response_cache import ResponseCache
from idnode.transport.udp import serve_udp
from idnode.transport.wire_handler import WireHandler
from tests.conftest import free_port
from tests.hsj_peer import client, codec
from tests.transport.conftest import PREFIX

TWELVE_HOURS = 43200

# (what is asked, the request, the response code it must get)
REFUSALS = [
    ("unknown handle", lambda: codec.resolution(f"{PREFIX}/no-such", request_id=11), 100),
    ("malformed request", lambda: codec.malformed(request_id=12), codec.RC_PROTOCOL_ERROR),
    ("unknown opcode", lambda: codec.request(777, b"", request_id=13), 5),
    ("not homed", lambda: codec.resolution("99.999/x", request_id=14), 301),
    (
        "challenge",
        # a value only its administrators may read, asked for without PO
        lambda: codec.resolution(f"{PREFIX}/demo-1", request_id=15, flags=0, indexes=(5,)),
        codec.RC_AUTHENTICATION_NEEDED,
    ),
    ("unknown session", lambda: codec.session_terminate(4242, request_id=16), 500),
    (
        "stray challenge answer",
        lambda: codec.request(codec.OC_CHALLENGE_RESPONSE, b"", request_id=17, session_id=99),
        None,  # refused, whichever refusal code
    ),
]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize(("what", "build", "code"), REFUSALS, ids=[r[0] for r in REFUSALS])
async def test_every_refusal_expires_twelve_hours_ahead(wire_node, transport, what, build, code):
    now = int(wire_node.clock())
    send = client.udp if transport == "udp" else client.tcp
    reply = await asyncio.to_thread(send, wire_node.host, wire_node.port, build(), now=now)
    if code is None:
        assert reply.code not in (0, codec.RC_SUCCESS)
    else:
        assert reply.code == code, reply.error_text if reply.code != 402 else ""
    assert reply.expiration == now + TWELVE_HOURS


async def test_success_expires_twelve_hours_ahead(wire_node):
    now = int(wire_node.clock())
    reply = await asyncio.to_thread(
        client.udp, wire_node.host, wire_node.port, codec.get_site_info(request_id=21), now=now
    )
    assert reply.code == codec.RC_SUCCESS
    assert reply.expiration == now + TWELVE_HOURS


async def test_a_cached_answer_is_renewed_before_it_expires(wire_node):
    """An answer kept in the response cache while no write happens must not outlive its
    expiration: past half its validity it is computed (and stamped) again."""
    handler = WireHandler(wire_node.node, cache=ResponseCache())
    port = free_port()
    transport, _ = await serve_udp(handler, "127.0.0.1", port)
    try:
        ask = codec.resolution(f"{PREFIX}/demo-1", request_id=31)
        clock = wire_node.clock
        first = await asyncio.to_thread(client.udp, "127.0.0.1", port, ask, now=int(clock()))
        assert first.code == codec.RC_SUCCESS
        assert len(handler.cache) == 1  # kept
        for hours in (7, 13, 30):
            clock.advance(hours * 3600)
            now = int(clock())
            again = await asyncio.to_thread(client.udp, "127.0.0.1", port, ask, now=now)
            assert again.code == codec.RC_SUCCESS
            assert again.expiration == now + TWELVE_HOURS
        clock.advance(60)  # well within the validity: answered from the cache as it was
        cached = await asyncio.to_thread(client.udp, "127.0.0.1", port, ask, now=int(clock()))
        assert cached.expiration == again.expiration
    finally:
        transport.close()
