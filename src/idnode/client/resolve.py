"""A small async Handle client over UDP, TCP and HTTP, used by ``idnode get`` and the tests.

It speaks through the same sans-I/O codec as the server, so what it sends is exactly what
``idnode.wire`` encodes.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from typing import Any

import httpx

from idnode.codes import OpCode, OpFlag
from idnode.errors import IdnodeError
from idnode.runtime import ENTROPY, randbits
from idnode.wire import bodies
from idnode.wire.envelope import ENVELOPE_SIZE, Envelope
from idnode.wire.framing import TcpFramer, UdpReassembler, is_truncated_answer, split_datagrams
from idnode.wire.header import Header, decode_header
from idnode.wire.message import Message, decode_message, encode_message


class ClientTimeout(IdnodeError):
    """The server did not answer in time."""


def _new_id() -> int:
    """An unpredictable request id, so an off-path attacker cannot forge the answer."""
    return randbits(ENTROPY, 31)


def resolution_request(
    handle: str,
    *,
    indexes: tuple[int, ...] = (),
    types: tuple[str, ...] = (),
    public_only: bool = True,
    request_id: int | None = None,
    certify: bool = False,
) -> Message:
    """A resolution request; ``certify`` asks for a signed answer carrying a digest of this
    request (CT + RD), which ``signing.verify_answer`` checks."""
    flags = OpFlag.PO if public_only else OpFlag(0)
    if certify:
        flags |= OpFlag.CT | OpFlag.RD
    return Message(
        header=Header(opcode=OpCode.RESOLUTION, flags=flags),
        body=bodies.ResolutionRequest(handle, tuple(indexes), tuple(types)),
        envelope=Envelope(request_id=_new_id() if request_id is None else request_id),
    )


def siteinfo_request(request_id: int | None = None) -> Message:
    return Message(
        header=Header(opcode=OpCode.GET_SITEINFO),
        body=bodies.GetSiteInfoRequest(),
        envelope=Envelope(request_id=_new_id() if request_id is None else request_id),
    )


class _UDPClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.reassembler = UdpReassembler()
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr) -> None:
        if self.done.done():
            return
        try:
            frame = self.reassembler.feed(data, self.done.get_loop().time(), peer=addr)
        except IdnodeError as exc:
            self.done.set_exception(exc)
            return
        if frame is not None:
            self.done.set_result(frame)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


async def request_udp(
    host: str,
    port: int,
    message: Message,
    *,
    timeout: float = 2.0,
    attempts: int = 2,
    tcp_fallback: bool = True,
) -> Message:
    """Send one request over UDP and wait for its answer, retrying on loss.

    A truncated answer (the server's anti-amplification bound: TC set, no body) is asked
    again over TCP on the same port, as HSJ clients move on to TCP; ``tcp_fallback=False``
    returns the truncated header-only message instead (tests look at it).
    """
    raw = encode_message(message)
    datagrams = split_datagrams(message.envelope, raw[ENVELOPE_SIZE:])
    loop = asyncio.get_running_loop()
    for _ in range(attempts):
        transport, proto = await loop.create_datagram_endpoint(_UDPClient, remote_addr=(host, port))
        try:
            for d in datagrams:
                transport.sendto(d)
            envelope, payload = await asyncio.wait_for(proto.done, timeout)
            if is_truncated_answer(envelope):
                if tcp_fallback:
                    return await request_tcp(host, port, message, timeout=max(timeout, 5.0))
                return Message(decode_header(payload), bodies.RawBody(b""), envelope)
            return decode_message(envelope, payload)
        except TimeoutError:
            continue
        finally:
            transport.close()
    raise ClientTimeout(f"no answer from udp:{host}:{port} after {attempts} attempts")


async def request_tcp(
    host: str,
    port: int,
    message: Message,
    *,
    timeout: float = 5.0,
    ssl: ssl_module.SSLContext | None = None,
) -> Message:
    """Send one request over a new TCP connection (inside TLS with ``ssl``) and read its
    (possibly multi-part) answer."""
    try:
        connect = asyncio.open_connection(host, port, ssl=ssl)
        reader, writer = await asyncio.wait_for(connect, timeout)
    except (OSError, TimeoutError) as exc:
        raise ClientTimeout(f"cannot connect to tcp:{host}:{port}: {exc}") from None
    try:
        writer.write(encode_message(message))
        await writer.drain()
        framer = TcpFramer()
        async with asyncio.timeout(timeout):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    raise ClientTimeout(f"tcp:{host}:{port} closed the connection")
                frames = framer.feed(chunk)
                if frames:
                    return decode_message(*frames[0])
    except TimeoutError:
        raise ClientTimeout(f"no answer from tcp:{host}:{port} within {timeout}s") from None
    finally:
        writer.close()


async def resolve_http(
    base_url: str,
    handle: str,
    *,
    indexes: tuple[int, ...] = (),
    types: tuple[str, ...] = (),
    timeout: float = 5.0,
) -> tuple[int, dict[str, Any]]:
    """GET /api/handles/{handle}; returns (HTTP status, JSON body)."""
    params: list[tuple[str, str | int]] = [("type", t) for t in types]
    params += [("index", i) for i in indexes]
    async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout) as client:
        resp = await client.get(f"/api/handles/{handle}", params=params)
    return resp.status_code, resp.json()
