"""A real ``idnode serve`` answering resolution over UDP, TCP and HTTP."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess

import httpx
import pytest

from idnode import client
from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.wire.envelope import ENVELOPE_SIZE, Envelope, decode_envelope, encode_envelope
from idnode.wire.header import Header
from idnode.wire.message import Message, decode_message, encode_message
from idnode.wire.site import decode_site
from tests.conftest import IDNODE


def udp(node, message: Message) -> Message:
    return asyncio.run(client.request_udp(node.host, node.port, message))


def tcp(node, message: Message) -> Message:
    return asyncio.run(client.request_tcp(node.host, node.port, message))


@pytest.mark.parametrize("send", [udp, tcp], ids=["udp", "tcp"])
def test_resolves_public_values(running_node, send):
    handle = f"{running_node.prefix}/demo-1"
    reply = send(running_node, client.resolution_request(handle, request_id=4242))
    assert reply.header.response_code == ResponseCode.SUCCESS
    assert reply.envelope.request_id == 4242
    assert reply.body.handle == handle
    by_index = {v.index: v for v in reply.body.values}
    assert by_index[1].type == "URL"
    assert by_index[1].data == b"https://example.com/products/pump-7"
    assert 5 not in by_index, "a value without PUBLIC_READ reached an anonymous client"
    assert sorted(by_index) == [1, 2, 3, 100]


@pytest.mark.parametrize("send", [udp, tcp], ids=["udp", "tcp"])
def test_non_public_value_withheld_even_without_public_only_flag(running_node, send):
    """As HSJ's ``checkReadAccess``: without the PO flag, a request matching a value only
    admins may read is challenged (402) rather than answered; the value is never sent to
    an anonymous client. Asking for public values only answers at once."""
    handle = f"{running_node.prefix}/demo-1"
    for indexes in ((), (5,)):
        request = client.resolution_request(handle, indexes=indexes, public_only=False)
        reply = send(running_node, request)
        assert reply.header.response_code == ResponseCode.AUTHENTICATION_NEEDED
        assert not hasattr(reply.body, "values")
    reply = send(running_node, client.resolution_request(handle, public_only=False, indexes=(1,)))
    assert reply.header.response_code == ResponseCode.SUCCESS
    reply = send(running_node, client.resolution_request(handle, public_only=True))
    assert reply.header.response_code == ResponseCode.SUCCESS
    assert 5 not in {v.index for v in reply.body.values}


def test_type_and_index_filters(running_node):
    handle = f"{running_node.prefix}/demo-2"
    reply = udp(running_node, client.resolution_request(handle, types=("URL",)))
    assert [v.type for v in reply.body.values] == ["URL"]
    reply = udp(running_node, client.resolution_request(handle, indexes=(2, 3)))
    assert [v.index for v in reply.body.values] == [2, 3]
    reply = udp(running_node, client.resolution_request(handle, types=("EMAIL",), indexes=(1,)))
    assert [v.index for v in reply.body.values] == [1, 3]
    reply = udp(running_node, client.resolution_request(handle, types=("NOPE",)))
    assert reply.header.response_code == ResponseCode.VALUES_NOT_FOUND


def test_handles_are_case_insensitive(running_node):
    reply = udp(running_node, client.resolution_request(f"{running_node.prefix}/DEMO-3"))
    assert reply.header.response_code == ResponseCode.SUCCESS


@pytest.mark.parametrize(
    ("handle", "code"),
    [
        ("20.500.123/no-such-thing", ResponseCode.HANDLE_NOT_FOUND),
        ("99.999/elsewhere", ResponseCode.SERVER_NOT_RESPONSIBLE),
        ("no-slash", ResponseCode.INVALID_HANDLE),
    ],
)
@pytest.mark.parametrize("send", [udp, tcp], ids=["udp", "tcp"])
def test_error_codes(running_node, send, handle, code):
    reply = send(running_node, client.resolution_request(handle))
    assert reply.header.response_code == code
    assert reply.body.message


def test_prefix_handle_and_siteinfo(running_node):
    reply = udp(running_node, client.resolution_request(f"0.NA/{running_node.prefix}"))
    assert reply.header.response_code == ResponseCode.SUCCESS
    assert {v.type for v in reply.body.values} >= {"HS_SITE", "HS_ADMIN", "HS_PUBKEY"}
    info = udp(running_node, client.siteinfo_request())
    assert info.header.response_code == ResponseCode.SUCCESS
    site = decode_site(info.body.site)
    ports = {(i.protocol, i.port) for s in site.servers for i in s.interfaces}
    assert (0, running_node.port) in ports and (1, running_node.port) in ports
    assert str(site.servers[0].address).endswith("127.0.0.1")


def test_answers_in_highest_common_version(running_node):
    request = client.resolution_request(f"{running_node.prefix}/demo-1")
    request.envelope = Envelope(major=2, minor=1, suggest_major=2, suggest_minor=11, request_id=7)
    reply = udp(running_node, request)
    assert (reply.envelope.major, reply.envelope.minor) == (2, 11)
    request.envelope = Envelope(major=2, minor=1, suggest_major=0, suggest_minor=0, request_id=8)
    reply = udp(running_node, request)
    assert (reply.envelope.major, reply.envelope.minor) == (2, 1)


def _raw_udp(node, data: bytes, timeout: float = 1.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(data, (node.host, node.port))
        try:
            return s.recv(65536)
        except TimeoutError:
            return None


def test_malformed_and_unsupported_requests_get_errors_and_server_stays_up(running_node):
    # Envelope fine, body truncated: a protocol error answer echoing the request id.
    good = encode_message(client.resolution_request(f"{running_node.prefix}/demo-1", request_id=99))
    broken = bytearray(good[: len(good) - 6])
    struct.pack_into(">I", broken, 16, len(broken) - ENVELOPE_SIZE)
    raw = _raw_udp(running_node, bytes(broken))
    assert raw is not None
    env = decode_envelope(raw[:ENVELOPE_SIZE])
    reply = decode_message(env, raw[ENVELOPE_SIZE:])
    assert env.request_id == 99
    assert reply.header.response_code == ResponseCode.PROTOCOL_ERROR
    # Shorter than an envelope: nothing to answer to.
    assert _raw_udp(running_node, b"\x02\x01garbage", timeout=0.3) is None
    # An opcode the node does not implement.
    message = client.resolution_request("20.500.123/demo-1", request_id=5)
    message.header = Header(opcode=999, flags=OpFlag(0))
    unknown = encode_envelope(Envelope(request_id=5, message_length=24)) + struct.pack(
        ">IIIHBBII", 999, 0, 0, 0, 0, 0, 0, 0
    )
    raw = _raw_udp(running_node, unknown)
    assert raw is not None
    reply = decode_message(decode_envelope(raw[:ENVELOPE_SIZE]), raw[ENVELOPE_SIZE:])
    assert reply.header.response_code in (
        ResponseCode.OPERATION_NOT_SUPPORTED,
        ResponseCode.PROTOCOL_ERROR,
    )
    # Still serving.
    ok = udp(running_node, client.resolution_request(f"{running_node.prefix}/demo-1"))
    assert ok.header.response_code == ResponseCode.SUCCESS


def test_tcp_garbage_closes_only_that_connection(running_node):
    with socket.create_connection((running_node.host, running_node.port), timeout=2) as s:
        s.sendall(b"\x02\x01" + b"\xff" * 18 + b"x" * 10)  # message length 0xffffffff
        s.settimeout(2)
        assert s.recv(100) == b""  # closed by the server
    ok = tcp(running_node, client.resolution_request(f"{running_node.prefix}/demo-1"))
    assert ok.header.response_code == ResponseCode.SUCCESS


def test_tcp_keeps_connection_for_several_requests(running_node):
    from idnode.wire.framing import TcpFramer

    with socket.create_connection((running_node.host, running_node.port), timeout=3) as s:
        for rid in (11, 12, 13):
            msg = client.resolution_request(f"{running_node.prefix}/demo-1", request_id=rid)
            msg.header = Header(opcode=OpCode.RESOLUTION, flags=OpFlag.PO | OpFlag.KC)
            s.sendall(encode_message(msg))
        framer, frames = TcpFramer(), []
        while len(frames) < 3:
            frames += framer.feed(s.recv(65536))
    assert [env.request_id for env, _ in frames] == [11, 12, 13]


def test_http_resolution_shape(running_node):
    url = f"{running_node.http_url}/api/handles/{running_node.prefix}/demo-1"
    resp = httpx.get(url)
    assert resp.status_code == 200
    body = resp.json()
    assert body["responseCode"] == 1
    assert body["handle"] == f"{running_node.prefix}/demo-1"
    values = body["values"]
    assert [v["index"] for v in values] == [1, 2, 3, 100]
    first = values[0]
    assert first["type"] == "URL"
    assert first["data"] == {"format": "string", "value": "https://example.com/products/pump-7"}
    assert first["ttl"] == 86400 and first["timestamp"].endswith("Z")
    admin = values[-1]["data"]
    assert admin["format"] == "admin"
    assert admin["value"]["handle"] == f"0.NA/{running_node.prefix}"
    assert "supplier contract" not in resp.text


def test_http_filters_and_errors(running_node):
    base = f"{running_node.http_url}/api/handles"
    resp = httpx.get(f"{base}/{running_node.prefix}/demo-1", params={"type": "URL"})
    assert [v["type"] for v in resp.json()["values"]] == ["URL"]
    resp = httpx.get(f"{base}/{running_node.prefix}/demo-1", params=[("index", 2), ("index", 3)])
    assert [v["index"] for v in resp.json()["values"]] == [2, 3]
    resp = httpx.get(f"{base}/{running_node.prefix}/missing")
    assert resp.status_code == 404
    assert resp.json() == {
        "responseCode": 100,
        "handle": f"{running_node.prefix}/missing",
        "message": resp.json()["message"],
    }
    assert resp.json()["message"]
    resp = httpx.get(f"{base}/99.1/x")
    assert (resp.status_code, resp.json()["responseCode"]) == (400, 301)
    resp = httpx.get(f"{base}/{running_node.prefix}/demo-1", params={"index": "abc"})
    assert resp.status_code == 400 and resp.json()["message"]


def test_http_proxy_redirects_to_url(running_node):
    resp = httpx.get(f"{running_node.http_url}/{running_node.prefix}/demo-2")
    assert resp.status_code == 302
    assert resp.headers["location"] == "https://example.com/products/valve-3"
    missing = httpx.get(f"{running_node.http_url}/{running_node.prefix}/nope")
    assert missing.status_code == 404


def test_large_record_over_udp_arrives_in_several_datagrams(running_node, tmp_path):
    import orjson

    big = "x" * 3000
    line = {
        "handle": f"{running_node.prefix}/big",
        "values": [{"index": i, "type": "DESC", "data": f"{i}-{big}"} for i in range(1, 6)],
    }
    records = tmp_path / "big.jsonl"
    records.write_bytes(orjson.dumps(line) + b"\n")
    subprocess.run(
        [*IDNODE, "load", str(running_node.directory), str(records)],
        check=True,
        capture_output=True,
    )
    reply = udp(running_node, client.resolution_request(f"{running_node.prefix}/big"))
    assert reply.header.response_code == ResponseCode.SUCCESS
    assert [v.data[:2] for v in reply.body.values] == [b"1-", b"2-", b"3-", b"4-", b"5-"]
    assert all(len(v.data) == 3002 for v in reply.body.values)
