"""A deliberately broken Handle server for the conformance tests: a loopback proxy in front
of a real ``idnode serve`` that breaks one behaviour at a time.

Forwarding keeps everything the fault does not touch correct (challenges, admin writes,
REST), so a check that fails against a fault fails because of that fault. Hooks:

* ``on_request(req, raw)``: return ``raw`` (possibly rewritten) to forward, a ``Message`` to
  answer directly, or ``DROP`` for silence;
* ``on_response(req, resp, raw, transport)``: the bytes to send back (``None`` drops);
* ``udp_out(datagrams)``: the datagrams actually sent;
* ``http_request`` / ``http_response`` for the REST API.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from idnode.errors import IdnodeError
from idnode.wire.envelope import ENVELOPE_SIZE, decode_envelope
from idnode.wire.framing import TcpFramer, UdpReassembler, split_datagrams
from idnode.wire.message import Message, decode_message, decode_message_bytes, encode_message

DROP = object()


def env_bytes(env) -> bytes:
    """The envelope as sent, even for versions ``encode_envelope`` refuses (5.0)."""
    from dataclasses import replace

    from idnode.wire.envelope import encode_envelope

    return encode_envelope(replace(env, suggest_major=env.suggest_major & 3))


def _decode(raw: bytes) -> Message | None:
    try:
        return decode_message_bytes(raw)
    except (IdnodeError, ValueError):
        return None


@dataclass
class Fault:
    name: str
    on_request: Callable[[Message | None, bytes], Any] | None = None
    on_response: Callable[[Message | None, Message | None, bytes, str], bytes | None] | None = None
    udp_out: Callable[[list[bytes]], list[bytes]] | None = None
    http_request: Callable[[str, str, dict, bytes], Any] | None = None
    http_response: Callable[[str, str, int, dict, bytes], tuple[int, dict, bytes]] | None = None
    kills_on_malformed: bool = False
    delay: float = 0.0
    drop_every: int = 0
    # HANDLE.NET's TCP listener: one request answered per connection, then closed
    one_request_per_connection: bool = False


class FaultyServer:
    """UDP + TCP on one port and HTTP on another, forwarding to ``upstream``."""

    def __init__(self, upstream_host: str, upstream_port: int, upstream_http: str) -> None:
        self.up_host, self.up_port, self.up_http = upstream_host, upstream_port, upstream_http
        self.fault = Fault("none")
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.http_port = 0
        self.dead_until = 0.0
        self.counter = 0
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FaultyServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            self.udp_transport.close()
            self.tcp_server.close()
            self.http_server.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def set(self, fault: Fault) -> None:
        self.fault, self.dead_until, self.counter = fault, 0.0, 0

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        self.tcp_server = await asyncio.start_server(self._tcp_client, "127.0.0.1", 0)
        self.port = self.tcp_server.sockets[0].getsockname()[1]
        self.udp_transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpSide(self), local_addr=("127.0.0.1", self.port)
        )
        self.http_server = await asyncio.start_server(self._http_client, "127.0.0.1", 0)
        self.http_port = self.http_server.sockets[0].getsockname()[1]
        self.http_client = httpx.AsyncClient(timeout=10)

    @property
    def dead(self) -> bool:
        return time.monotonic() < self.dead_until

    def kill(self) -> None:
        if self.fault.kills_on_malformed:
            self.dead_until = time.monotonic() + 3.0

    # -- the request path ------------------------------------------------------------------
    def request_action(self, raw: bytes) -> Any:
        """What to do with one whole request: forward bytes, answer a Message, or DROP."""
        if self.dead:
            return DROP
        self.counter += 1
        if self.fault.drop_every and self.counter % self.fault.drop_every == 0:
            return DROP
        if self.fault.on_request is None:
            return raw
        return self.fault.on_request(_decode(raw), raw)

    def response_bytes(self, req: Message | None, raw: bytes, transport: str) -> bytes | None:
        if self.fault.on_response is None:
            return raw
        return self.fault.on_response(req, _decode(raw), raw, transport)

    async def upstream_udp(self, data: bytes) -> list[bytes]:
        """Send one whole request upstream over UDP; the whole answer (or nothing)."""
        loop = asyncio.get_running_loop()
        got: asyncio.Future = loop.create_future()
        reassembler = UdpReassembler()

        class Side(asyncio.DatagramProtocol):
            def datagram_received(self, d: bytes, addr: Any) -> None:
                try:
                    frame = reassembler.feed(d, time.monotonic())
                except IdnodeError:
                    return
                if frame is not None and not got.done():
                    got.set_result(frame)

        transport, _ = await loop.create_datagram_endpoint(
            Side, remote_addr=(self.up_host, self.up_port)
        )
        try:
            env = decode_envelope(data[:ENVELOPE_SIZE])
            if len(data) <= 512:
                transport.sendto(data)
            else:
                for d in split_datagrams(env, data[ENVELOPE_SIZE:]):
                    transport.sendto(d)
            env, payload = await asyncio.wait_for(got, 3.0)
        except (TimeoutError, IdnodeError, ValueError):
            return []
        finally:
            transport.close()
        return [env_bytes(env) + payload]

    # -- TCP ------------------------------------------------------------------------------
    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = TcpFramer()
        try:
            up_r, up_w = await asyncio.open_connection(self.up_host, self.up_port)
        except OSError:
            writer.close()
            return
        up_framer = TcpFramer()
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                try:
                    frames = framer.feed(chunk)
                except IdnodeError:
                    self.kill()
                    break
                for env, payload in frames:
                    raw = env_bytes(env) + payload
                    req = _decode(raw)
                    action = self.request_action(raw)
                    if action is DROP:
                        continue
                    if isinstance(action, Message):
                        writer.write(encode_message(action))
                        continue
                    up_w.write(action)
                    await up_w.drain()
                    while True:  # read the answer, all CN parts
                        data = await asyncio.wait_for(up_r.read(65536), 5)
                        if not data:
                            raise ConnectionError
                        parts = up_framer.feed(data)
                        done = False
                        for renv, rpayload in parts:
                            rraw = env_bytes(renv) + rpayload
                            msg = _decode(rraw)
                            if self.fault.delay:
                                await asyncio.sleep(self.fault.delay)
                            out = self.response_bytes(req, rraw, "tcp")
                            if out is not None:
                                writer.write(out)
                            cn = msg is not None and msg.header.flags & 0x04000000
                            done = done or not cn
                        if done:
                            break
                    await writer.drain()
                    if self.fault.one_request_per_connection:
                        return  # the finally closes both sides
        except (OSError, ConnectionError, TimeoutError):
            pass
        finally:
            writer.close()
            up_w.close()

    # -- HTTP -----------------------------------------------------------------------------
    async def _http_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip()] = v.strip()
            length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), 0))
            body = await reader.readexactly(length) if length else b""
            if self.dead:
                writer.close()
                return
            if self.fault.delay:
                await asyncio.sleep(self.fault.delay)
            status, rheaders, rbody = None, {}, b""
            if self.fault.http_request is not None:
                changed = self.fault.http_request(method, target, headers, body)
                if isinstance(changed, tuple) and len(changed) == 3 and isinstance(changed[0], int):
                    status, rheaders, rbody = changed
                elif changed is not None:
                    method, target, headers, body = changed
            if status is None:
                fwd = {
                    k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")
                }
                resp = await self.http_client.request(
                    method, self.up_http + target, headers=fwd, content=body
                )
                status, rbody = resp.status_code, resp.content
                rheaders = {
                    k: v
                    for k, v in resp.headers.multi_items()
                    if k.lower() in ("content-type", "www-authenticate", "location")
                }
                if self.fault.http_response is not None:
                    status, rheaders, rbody = self.fault.http_response(
                        method, target, status, rheaders, rbody
                    )
            out = [f"HTTP/1.1 {status} X"]
            for k, v in rheaders.items():
                for one in v if isinstance(v, list) else [v]:
                    out.append(f"{k}: {one}")
            out += [f"Content-Length: {len(rbody)}", "Connection: close", "", ""]
            writer.write("\r\n".join(out).encode("latin-1") + rbody)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ValueError, httpx.HTTPError):
            pass
        finally:
            writer.close()


class _UdpSide(asyncio.DatagramProtocol):
    def __init__(self, server: FaultyServer) -> None:
        self.server = server
        self.reassembler = UdpReassembler()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        s = self.server
        try:
            frame = self.reassembler.feed(data, time.monotonic(), peer=addr)
        except IdnodeError:
            s.kill()
            if not s.dead and len(data) >= ENVELOPE_SIZE:
                asyncio.ensure_future(self._forward(data, addr, raw_datagram=True))
            return
        if frame is None:
            s.kill()  # a piece of something: a crashing server dies here too
            return
        whole = len(data) == ENVELOPE_SIZE + len(frame[1])
        raw = data if whole else env_bytes(frame[0]) + frame[1]
        asyncio.ensure_future(self._forward(raw, addr))

    async def _forward(
        self, raw: bytes, addr: Any, *, raw_datagram: bool = False, **_: Any
    ) -> None:
        s = self.server
        req = _decode(raw)
        action = s.request_action(raw)
        if action is DROP:
            return
        if isinstance(action, Message):
            answers = [encode_message(action)]
        else:
            answers = await s.upstream_udp(action)
        for answer in answers:
            if s.fault.delay:
                await asyncio.sleep(s.fault.delay)
            out = s.response_bytes(req, answer, "udp")
            if out is None:
                continue
            env = decode_envelope(out[:ENVELOPE_SIZE])
            if len(out) - ENVELOPE_SIZE > 492:
                datagrams = split_datagrams(env, out[ENVELOPE_SIZE:])
            else:
                datagrams = [out]  # as is, even when a fault made the length lie
            if s.fault.udp_out is not None:
                datagrams = s.fault.udp_out(datagrams)
            for d in datagrams:
                self.transport.sendto(d, addr)


def decode_payload(env_bytes: bytes) -> Message:
    env = decode_envelope(env_bytes[:ENVELOPE_SIZE])
    return decode_message(env, env_bytes[ENVELOPE_SIZE:])
