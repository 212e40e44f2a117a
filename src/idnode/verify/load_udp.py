"""The Handle protocol over UDP: a few connected sockets per process, answers matched by
request id.

Several sockets rather than one because a node serving with SO_REUSEPORT spreads datagrams
over its workers by the sender's address: one socket per client process would pin each
client to one worker. Answers bigger than one datagram are reassembled (``UdpReassembler``);
resolution answers of seeded records fit in one, and that path does no decoding at all.
"""

from __future__ import annotations

import asyncio
from typing import Any

from idnode.errors import IdnodeError
from idnode.runtime import Clock
from idnode.verify.channel import Failure
from idnode.verify.checks import check_wire
from idnode.verify.results import MALFORMED, TIMEOUT
from idnode.verify.workload import Op, encode_resolution
from idnode.wire import peek
from idnode.wire.envelope import ENVELOPE_SIZE, encode_envelope
from idnode.wire.framing import UdpReassembler


class _Socket(asyncio.DatagramProtocol):
    def __init__(self, channel: UdpChannel) -> None:
        self.channel = channel

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.channel.received(data, addr)

    def error_received(self, exc: Exception) -> None:  # e.g. ICMP port unreachable
        self.channel.errors_seen += 1


class UdpChannel:
    """Resolution over UDP to ``host:port`` through ``sockets`` connected sockets; requests
    time out, and split answers are reassembled, on ``clock`` (the caller's)."""

    def __init__(
        self, host: str, port: int, *, timeout: float, clock: Clock, sockets: int = 4
    ) -> None:
        self.host, self.port = host, port
        self.timeout_ns = int(timeout * 1e9)
        self.clock = clock
        self.now_ns = clock.monotonic_ns  # bound once: read per request
        self.nsockets = max(1, sockets)
        self.transports: list[asyncio.DatagramTransport] = []
        self.pending: dict[int, tuple[int, asyncio.Future]] = {}
        self.reassembler = UdpReassembler()
        self.errors_seen = 0
        self._rid = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(self.nsockets):
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Socket(self), remote_addr=(self.host, self.port)
            )
            self.transports.append(transport)

    async def call(self, op: Op) -> tuple[str, str | None]:
        self._rid = rid = (self._rid + 1) & 0x7FFFFFFF
        fut = asyncio.get_running_loop().create_future()
        self.pending[rid] = (self.now_ns() + self.timeout_ns, fut)
        self.transports[rid % self.nsockets].sendto(encode_resolution(op.handle, op.type, rid))
        got = await fut
        if isinstance(got, Failure):
            return got.kind, got.note
        return check_wire(op, got[0], got[1])

    def received(self, data: bytes, addr: Any) -> None:
        if len(data) < ENVELOPE_SIZE:
            return  # cannot tell whose it is; the request will time out
        rid = peek.request_id(data)
        entry = self.pending.get(rid)
        if entry is None:
            return  # late answer to a request already timed out
        length = peek.message_length(data)
        if not peek.is_truncated(data) and len(data) - ENVELOPE_SIZE >= length:
            del self.pending[rid]
            end = ENVELOPE_SIZE + length
            entry[1].set_result((data[:ENVELOPE_SIZE], data[ENVELOPE_SIZE:end]))
            return
        try:
            frame = self.reassembler.feed(data, self.clock.monotonic(), peer=addr)
        except IdnodeError as exc:
            del self.pending[rid]
            entry[1].set_result(Failure(MALFORMED, f"datagram: {exc}"))
            return
        if frame is not None:
            del self.pending[rid]
            envelope, payload = frame
            entry[1].set_result((encode_envelope(envelope), payload))

    def sweep(self, now_ns: int) -> None:
        expired = []
        for rid, (deadline, _) in self.pending.items():
            if deadline > now_ns:
                break  # one timeout for all: insertion order is deadline order
            expired.append(rid)
        for rid in expired:
            _, fut = self.pending.pop(rid)
            fut.set_result(Failure(TIMEOUT))

    async def close(self) -> None:
        for t in self.transports:
            t.close()
        for _, fut in self.pending.values():
            if not fut.done():
                fut.set_result(Failure(TIMEOUT))
        self.pending.clear()
