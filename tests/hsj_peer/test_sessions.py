"""Issue 14.2: the Diffie-Hellman sessions HSJ's ``HandleResolver`` sets up before every
administrative request, driven by the independent client (``tests/hsj_peer/session.py``,
written from RFC 3652 §3.8 and HSJ's layouts with ``cryptography``) against the node on real
TCP sockets -- one connection per request, as HSJ does. Every answer's expiration is checked
against the node's clock, as HSJ checks it.
"""

from __future__ import annotations

import asyncio
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15

from idnode.config import ConfigError
from idnode.transport.tcp import serve_tcp
from idnode.transport.wire_handler import WireHandler
from tests.conftest import free_port
from tests.hsj_peer import client, codec
from tests.hsj_peer.session import (
    ALG_AES,
    FLAG_CT,
    FLAG_ENC,
    OC_DELETE_HANDLE,
    RC_INVALID_SESSION_KEY,
    RC_SESSION_TIMEOUT,
    DHClient,
    split_answer,
)
from tests.transport.conftest import PREFIX

ADMIN_HANDLE, ADMIN_INDEX = f"0.NA/{PREFIX}", 300


async def _send(node, data: bytes, port: int | None = None) -> bytes:
    """One request on a new TCP connection (HSJ ``sendHdlTcpRequest``); the raw answer,
    its expiration checked as HSJ checks it."""
    raw = await asyncio.to_thread(client.tcp_raw, node.host, port or node.port, data)
    client.checked(codec.parse(raw), int(node.clock()))
    return raw


async def _setup(node, *, timeout: int = 0, port: int | None = None) -> DHClient:
    session = DHClient()
    ask = session.setup_request(ADMIN_HANDLE, ADMIN_INDEX, request_id=1, timeout=timeout)
    reply = codec.parse(await _send(node, ask, port))
    assert (reply.opcode, reply.code) == (400, codec.RC_SUCCESS), reply
    assert reply.session_id  # the new session's id, in the answer's envelope
    session.accept(reply.session_id, reply.body)
    return session


def _resolution_body(handle: str) -> bytes:
    return codec.utf8(handle) + b"\0\0\0\0" + b"\0\0\0\0"


def _public() -> bytes:
    """A resolution of the demo handle (asked with PO: its public values)."""
    return _resolution_body(f"{PREFIX}/demo-1")


def _answer_body(node, challenge: codec.Reply) -> bytes:
    """§3.5.2 with HSJ's HS_PUBKEY answer: hash id, then SHA256withRSA of nonce || digest."""
    signature = node.admin_key.sign(challenge.nonce + challenge.digest, PKCS1v15(), hashes.SHA256())
    answer = codec.utf8("SHA-256") + struct.pack(">I", len(signature)) + signature
    body = codec.utf8("HS_PUBKEY") + codec.utf8(ADMIN_HANDLE) + struct.pack(">I", ADMIN_INDEX)
    return body + struct.pack(">I", len(answer)) + answer


async def _authenticate(node, session: DHClient, opcode: int, body: bytes) -> codec.Reply:
    """A MAC'd admin request; its challenge (inside the session) answered on a new
    connection, MAC'd too. Returns the answer to the original request."""
    challenge = codec.parse(await _send(node, session.request(opcode, body, request_id=2)))
    assert challenge.code == codec.RC_AUTHENTICATION_NEEDED
    assert challenge.session_id == session.session_id  # challenged inside the session
    answer = session.request(
        codec.OC_CHALLENGE_RESPONSE, _answer_body(node, challenge), request_id=3
    )
    return codec.parse(await _send(node, answer))


async def _resolve_code(node, handle: str) -> int:
    ask = codec.resolution(handle, request_id=99)
    return codec.parse(await _send(node, ask)).code


async def test_dh_session_create_then_delete(wire_node):
    session = await _setup(wire_node)
    assert session.cipher == ALG_AES and len(session.key) == 32
    handle = f"{PREFIX}/in-session"
    created = await _authenticate(
        wire_node, session, codec.OC_CREATE_HANDLE, codec.create_body(handle, "https://a.example/")
    )
    assert (created.opcode, created.code, created.request_id) == (100, codec.RC_SUCCESS, 3)
    assert await _resolve_code(wire_node, handle) == codec.RC_SUCCESS
    # the session is now the administrator's: a MAC'd request needs no new challenge
    delete = session.request(OC_DELETE_HANDLE, codec.utf8(handle), request_id=4)
    deleted = codec.parse(await _send(wire_node, delete))
    assert (deleted.opcode, deleted.code) == (OC_DELETE_HANDLE, codec.RC_SUCCESS)
    assert await _resolve_code(wire_node, handle) == codec.RC_HANDLE_NOT_FOUND


async def test_certified_answers_carry_a_mac_that_verifies(wire_node):
    session = await _setup(wire_node)
    ask = session.request(
        codec.OC_RESOLUTION,
        _resolution_body(f"{PREFIX}/demo-1"),
        request_id=5,
        flags=FLAG_CT | codec.FLAG_PO,
    )
    raw = await _send(wire_node, ask)
    assert codec.parse(raw).code == codec.RC_SUCCESS
    assert split_answer(raw)[3].type == "HS_MAC"
    assert session.verify_mac(raw)
    forged = bytearray(raw)
    forged[-1] ^= 1  # the last byte of the MAC
    assert not session.verify_mac(bytes(forged))


async def test_answers_are_encrypted_when_the_client_asks(wire_node):
    session = await _setup(wire_node)
    handle = f"{PREFIX}/demo-1"
    ask = session.request(
        codec.OC_RESOLUTION, _resolution_body(handle), request_id=6, flags=FLAG_ENC | codec.FLAG_PO
    )
    raw = await asyncio.to_thread(client.tcp_raw, wire_node.host, wire_node.port, ask)
    assert handle.encode() not in raw  # nothing readable on the wire
    reply = client.checked(codec.parse(session.decrypt(raw)), int(wire_node.clock()))
    assert (reply.code, reply.request_id) == (codec.RC_SUCCESS, 6)
    assert handle.encode() in reply.body


async def test_session_exchange_key_rekeys(wire_node):
    session = await _setup(wire_node)
    old_key = session.key
    server_key = wire_node.node.private_key.public_key()
    rekey, new_key = session.exchange_key(server_key, request_id=7)
    reply = codec.parse(await _send(wire_node, rekey))
    assert (reply.opcode, reply.code) == (402, codec.RC_SUCCESS)
    session.key = new_key
    ask = session.request(codec.OC_RESOLUTION, _public(), request_id=8, flags=codec.FLAG_PO)
    assert codec.parse(await _send(wire_node, ask)).code == codec.RC_SUCCESS
    stale = session.request(
        codec.OC_RESOLUTION, _public(), request_id=9, flags=codec.FLAG_PO, key=old_key
    )
    assert codec.parse(await _send(wire_node, stale)).code == RC_INVALID_SESSION_KEY


async def test_terminate_ends_the_session(wire_node):
    session = await _setup(wire_node)
    ended = codec.parse(await _send(wire_node, session.request(401, b"", request_id=10)))
    assert (ended.opcode, ended.code) == (401, codec.RC_SUCCESS)
    ask = session.request(codec.OC_RESOLUTION, _public(), request_id=11, flags=codec.FLAG_PO)
    assert codec.parse(await _send(wire_node, ask)).code == RC_SESSION_TIMEOUT


async def test_expired_and_unknown_sessions_are_refused(wire_node):
    session = await _setup(wire_node, timeout=60)
    handle = f"{PREFIX}/late"
    wire_node.clock.advance(61)
    late = session.request(
        codec.OC_CREATE_HANDLE, codec.create_body(handle, "https://a.example/"), request_id=12
    )
    refused = codec.parse(await _send(wire_node, late))  # its expiration checked, too
    assert refused.code == RC_SESSION_TIMEOUT
    stranger = DHClient()
    stranger.session_id, stranger.key = 0x1234567, bytes(32)
    ask = stranger.request(codec.OC_CREATE_HANDLE, codec.create_body(handle, "u"), request_id=13)
    assert codec.parse(await _send(wire_node, ask)).code == RC_SESSION_TIMEOUT
    assert await _resolve_code(wire_node, handle) == codec.RC_HANDLE_NOT_FOUND


async def test_a_bad_mac_is_refused_and_writes_nothing(wire_node):
    session = await _setup(wire_node)
    handle = f"{PREFIX}/in-session"
    await _authenticate(
        wire_node, session, codec.OC_CREATE_HANDLE, codec.create_body(handle, "https://a.example/")
    )
    before = wire_node.dump()
    delete = bytearray(session.request(OC_DELETE_HANDLE, codec.utf8(handle), request_id=14))
    delete[-1] ^= 1  # the last byte of the MAC
    refused = codec.parse(await _send(wire_node, bytes(delete)))
    assert refused.code == RC_INVALID_SESSION_KEY
    assert wire_node.dump() == before


@pytest.fixture
async def idis_only(wire_node):
    """The node's wire handler with ``[auth] session_suites = ["idis-sm"]``, on its own port."""
    wire_node.node.config.auth.session_suites = ["idis-sm"]
    handler = WireHandler(wire_node.node)
    port = free_port()
    server = await serve_tcp(handler, "127.0.0.1", port)
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()


async def test_the_idis_suite_is_configurable(wire_node, idis_only):
    session = await _setup(wire_node, port=idis_only)
    assert session.cipher == 4  # SM4: the IDIS SDK's session cipher
    wire_node.node.config.auth.session_suites = ["no-such-suite"]
    with pytest.raises(ConfigError, match="session_suites"):
        WireHandler(wire_node.node)
