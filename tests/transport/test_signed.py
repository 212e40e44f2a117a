"""Signed answers (RFC 3652 message credential) from an in-process node over real sockets."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15

from idnode import client
from idnode.codes import OpFlag
from idnode.crypto.keys import generate_key
from idnode.transport.signing import (
    AnswerNotVerified,
    encode_signed,
    sign_message,
    site_keys,
    verify_answer,
)
from idnode.wire import bodies
from idnode.wire.credential import CREDENTIAL_SIGNED
from idnode.wire.envelope import ENVELOPE_SIZE
from idnode.wire.message import (
    decode_message_bytes,
    encode_header_body,
    encode_message,
    make_response,
)
from idnode.wire.site import decode_site
from tests.transport.conftest import PREFIX

HANDLE = f"{PREFIX}/demo-1"


def _keys(wire_node):
    return site_keys(decode_site(wire_node.node.site))


@pytest.mark.parametrize("protocol", ["udp", "tcp"])
async def test_certified_resolution_verifies(wire_node, protocol):
    request = client.resolution_request(HANDLE, certify=True)
    if protocol == "udp":
        reply = await client.request_udp(wire_node.host, wire_node.port, request)
    else:
        reply = await client.request_tcp(wire_node.host, wire_node.port, request)
    assert reply.header.flags & OpFlag.CT
    assert reply.credential is not None and reply.credential.type == CREDENTIAL_SIGNED
    verify_answer(reply, _keys(wire_node), request)
    assert any(v.data.startswith(b"https://") for v in reply.body.values)


async def test_uncertified_request_gets_no_credential(wire_node):
    request = client.resolution_request(HANDLE)
    reply = await client.request_tcp(wire_node.host, wire_node.port, request)
    assert reply.credential is None
    with pytest.raises(AnswerNotVerified, match="not signed"):
        verify_answer(reply, _keys(wire_node), request)


async def _signed_bytes(wire_node, request) -> bytes:
    raw = encode_message(request)
    from idnode.wire.envelope import decode_envelope

    answer = await wire_node.handler.answer(decode_envelope(raw), raw[ENVELOPE_SIZE:], "t:1")
    assert answer is not None
    return answer


async def test_credential_layout_is_hsj(wire_node):
    """Empty signer handle, index = session counter 0, HS_SIGNED, "SHA-256", and an RSA
    PKCS#1 v1.5 SHA-256 signature over versions + ids + header/body (HSJ signMessage)."""
    request = client.resolution_request(HANDLE, certify=True)
    reply = decode_message_bytes(await _signed_bytes(wire_node, request))
    cred = reply.credential
    assert (cred.version, cred.options, cred.signer.handle, cred.signer.index) == (0, 0, "", 0)
    assert cred.digest_algorithm == "SHA-256"
    env = reply.envelope
    assert (env.major, env.minor) >= (2, 8)
    prefix = bytes([env.major, env.minor, env.suggest_major, env.suggest_minor])
    prefix += struct.pack(">III", env.session_id, env.request_id, 0)
    wire_node.node.private_key.public_key().verify(
        cred.signature, prefix + reply.header_body, PKCS1v15(), hashes.SHA256()
    )


def _flip_in_value(data: bytes) -> bytes:
    """Change one byte inside the first URL value (b"https://" -> b"httpx://")."""
    at = data.index(b"https://") + 4
    return data[:at] + b"x" + data[at + 1 :]


async def test_tampered_answer_is_refused(wire_node):
    request = client.resolution_request(HANDLE, certify=True)
    tampered = decode_message_bytes(_flip_in_value(await _signed_bytes(wire_node, request)))
    assert any(v.data.startswith(b"httpx://") for v in tampered.body.values)
    with pytest.raises(AnswerNotVerified, match="altered"):
        verify_answer(tampered, _keys(wire_node), request)


async def test_answer_signed_by_another_key_is_refused(wire_node):
    request = client.resolution_request(HANDLE, certify=True)
    genuine = decode_message_bytes(await _signed_bytes(wire_node, request))
    forged = decode_message_bytes(encode_signed(genuine, generate_key("rsa", 2048)))
    with pytest.raises(AnswerNotVerified, match="another key"):
        verify_answer(forged, _keys(wire_node), request)


async def test_signed_answer_replayed_to_another_request_is_refused(wire_node):
    first = client.resolution_request(HANDLE, certify=True)
    answer = decode_message_bytes(await _signed_bytes(wire_node, first))
    other = client.resolution_request(f"{PREFIX}/demo-2", certify=True)
    other = replace(other, envelope=replace(other.envelope, request_id=first.request_id))
    with pytest.raises(AnswerNotVerified, match="request digest"):
        verify_answer(answer, _keys(wire_node), other)


async def test_errors_to_certified_requests_are_signed_too(wire_node):
    request = client.resolution_request(f"{PREFIX}/no-such-handle", certify=True)
    reply = await client.request_tcp(wire_node.host, wire_node.port, request)
    assert reply.header.response_code == 100
    verify_answer(reply, _keys(wire_node), request)


def test_dsa_server_key_signs_and_verifies():
    """Signing goes through crypto.keys by key type: a DSA site key works unchanged."""
    key = generate_key("dsa", 2048)
    request = client.resolution_request("20.500/x", certify=True)
    body = bodies.ResolutionResponse("20.500/x", ())
    answer = sign_message(make_response(request, body), key)
    decoded = decode_message_bytes(encode_message(answer))
    verify_answer(decoded, [key.public_key()], request)
    assert decoded.header_body == encode_header_body(answer)
