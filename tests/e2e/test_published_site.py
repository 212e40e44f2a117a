"""Issues 14.4 and 14.6 against real ``idnode serve`` processes.

* The stored ``0.NA/<prefix>`` HS_SITE -- what a client resolving the prefix learns -- names
  the listeners actually serving when ``IDNODE_SERVER_*`` moved them, with a bumped serial;
  get-siteinfo and every answer's header carry the same serial.
* The HTTP interface that site advertises answers HSJ's HDL-over-HTTP.
"""

from __future__ import annotations

import time

from idnode.model import HS_SITE
from idnode.wire.message import decode_message_bytes
from idnode.wire.site import SP_HDL_HTTP, SP_HDL_TCP, SP_HDL_UDP, decode_site
from tests.conftest import free_port, serve_node, start_node, stop_node
from tests.hsj_peer import client, codec

PREFIX = "20.500.321"


def _udp(node, ask: bytes) -> bytes:
    """The whole answer: the site record with HS_ADMIN exceeds one 512-byte datagram."""
    return client.udp_raw(node.host, node.port, ask)


def _stored_site(node) -> tuple[int, dict[int, int], int]:
    """(serial, {protocol: port}) of the stored HS_SITE and the answer header's serial."""
    raw = _udp(node, codec.resolution(f"0.NA/{PREFIX}", request_id=7))
    header = client.checked(codec.parse(raw), int(time.time()))
    assert header.code == codec.RC_SUCCESS
    (value,) = [v for v in decode_message_bytes(raw).body.values if v.type == HS_SITE]
    site = decode_site(value.data)
    ports = {i.protocol: i.port for s in site.servers for i in s.interfaces}
    return site.serial, ports, header.site_serial


def _siteinfo(node) -> tuple[int, int]:
    """(the record's serial, the header's serial) of get-siteinfo."""
    reply = codec.parse(_udp(node, codec.get_site_info(request_id=8)))
    # the body is the bare HS_SITE record (HSJ GetSiteInfoResponse, no length prefix):
    # DataFormatVersion (2), ProtocolVersion (2), SerialNumber (2) -- RFC 3651 §3.2.2
    return int.from_bytes(reply.body[4:6], "big"), reply.site_serial


def _listeners(node) -> dict[int, int]:
    return {SP_HDL_TCP: node.port, SP_HDL_UDP: node.port, SP_HDL_HTTP: node.http_port}


def test_moved_ports_are_published_with_a_new_serial(tmp_path):
    directory = tmp_path / "node"
    first = start_node(directory, prefix=PREFIX)
    try:
        serial, ports, _ = _stored_site(first)
        assert ports == _listeners(first)
    finally:
        stop_node(first)
    moved = serve_node(directory, free_port(), free_port(), PREFIX)
    try:
        new_serial, ports, header = _stored_site(moved)
        assert ports == _listeners(moved)
        assert new_serial == serial + 1 == header
        assert _siteinfo(moved) == (new_serial, new_serial)
    finally:
        stop_node(moved)
    again = serve_node(directory, moved.port, moved.http_port, PREFIX)
    try:  # nothing moved: nothing rewritten, the serial stays
        assert _stored_site(again)[0] == new_serial
    finally:
        stop_node(again)


def test_the_advertised_http_interface_speaks_the_binary_protocol(running_node):
    handle = f"{running_node.prefix}/demo-1"
    ask = codec.resolution(handle, request_id=9)
    status, headers, (reply,) = client.http(
        running_node.host, running_node.http_port, handle, ask, now=int(time.time())
    )
    assert status == 200 and headers["content-type"] == codec.HDL_MIME_TYPE
    assert reply.code == codec.RC_SUCCESS and reply.request_id == 9
