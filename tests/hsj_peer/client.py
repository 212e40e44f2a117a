"""The three transports of HSJ's ``HandleResolver``, with blocking sockets.

* UDP (RFC 3652 §2.1): the request in one datagram, the answer in one datagram;
* TCP (RFC 3652 §2.1): a new connection per request, the answer framed by its envelope's
  MessageLength (HSJ ``sendHdlTcpRequest``);
* HDL-over-HTTP (HSJ ``sendHttpOrHttpsRequest``; the manual's HTTP interface of a site):
  ``POST /<URL-encoded handle> HTTP/1.1`` with ``Accept`` and ``Content-Type``
  ``application/x-hdl-message`` and the request as the entity; the answer's headers are
  read up to the blank line, then envelope-framed messages until one lacks the CN flag.

Every answer is checked as HSJ checks it (``HandleResolver.sendRequestToInterface``): an
expiration time before ``now`` -- 0 included -- raises ``GotExpiredMessage``. Tests pass
``now`` from the node's clock.
"""

from __future__ import annotations

import socket
from urllib.parse import quote

from tests.hsj_peer.codec import (
    ENVELOPE_SIZE,
    FLAG_CN,
    HDL_MIME_TYPE,
    Reply,
    envelope_length,
    parse,
)

TIMEOUT = 10.0


class GotExpiredMessage(Exception):
    """HSJ's ``HandleException.GOT_EXPIRED_MESSAGE``: the answer's expiration has passed."""


def checked(reply: Reply, now: int | None) -> Reply:
    if now is not None and reply.expiration < now:
        raise GotExpiredMessage(f"expiration {reply.expiration} before now ({now})")
    return reply


UDP_DATA_SIZE = 512 - ENVELOPE_SIZE  # HSJ Common.MAX_UDP_DATA_SIZE: bytes per datagram


def udp_raw(host: str, port: int, data: bytes) -> bytes:
    """One whole answer over UDP, reassembled as HSJ's ``sendHdlUdpRequest`` does.

    A message longer than one 512-byte datagram arrives in several (RFC 3652 §2.2.1.5-6):
    each carries the envelope with the TC flag, the whole MessageLength and its sequence
    number; piece ``n`` belongs at ``n * 492`` of the message. Returns envelope + message.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendto(data, (host, port))
        first, _ = sock.recvfrom(65536)
        length = envelope_length(first)
        if len(first) - ENVELOPE_SIZE >= length:
            return first
        pieces = {_sequence(first): first[ENVELOPE_SIZE:]}
        while sum(map(len, pieces.values())) < length:
            more, _ = sock.recvfrom(65536)
            pieces[_sequence(more)] = more[ENVELOPE_SIZE:]
    message = bytearray(length)
    for seq, piece in pieces.items():
        message[seq * UDP_DATA_SIZE : seq * UDP_DATA_SIZE + len(piece)] = piece
    return first[:ENVELOPE_SIZE] + bytes(message)


def _sequence(datagram: bytes) -> int:
    """The envelope's SequenceNumber (RFC 3652 §2.2.1.5: bytes 12-15)."""
    return int.from_bytes(datagram[12:16], "big")


def udp(host: str, port: int, data: bytes, *, now: int | None = None) -> Reply:
    return checked(parse(udp_raw(host, port, data)), now)


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(out)} of {n} bytes")
        out += chunk
    return out


def _read_message(sock: socket.socket) -> bytes:
    envelope = _read_exactly(sock, ENVELOPE_SIZE)
    return envelope + _read_exactly(sock, envelope_length(envelope))


def tcp_raw(host: str, port: int, data: bytes) -> bytes:
    """One request on a new connection; the answer's envelope + message as sent."""
    with socket.create_connection((host, port), TIMEOUT) as sock:
        sock.sendall(data)
        return _read_message(sock)


def tcp(host: str, port: int, data: bytes, *, now: int | None = None) -> Reply:
    return checked(parse(tcp_raw(host, port, data)), now)


def http(
    host: str,
    port: int,
    handle: str,
    data: bytes,
    *,
    now: int | None = None,
    content_type: str = HDL_MIME_TYPE,
) -> tuple[int, dict[str, str], list[Reply]]:
    """(HTTP status, headers, the answers); no answers unless the status is 200."""
    head = (
        f"POST /{quote(handle, safe='')} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Accept: {HDL_MIME_TYPE}\r\n"
        "User-Agent: CNRI-HCL 2.0\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(data)}\r\n"
        "\r\n"
    )
    with socket.create_connection((host, port), TIMEOUT) as sock:
        sock.sendall(head.encode("ascii") + data)
        status, headers = _read_head(sock)
        if status != 200:
            return status, headers, []
        replies = [checked(parse(_read_message(sock)), now)]
        while replies[-1].flags & FLAG_CN:
            replies.append(checked(parse(_read_message(sock)), now))
    return status, headers, replies


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str]]:
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError("connection closed during the HTTP head")
        raw += chunk
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers
