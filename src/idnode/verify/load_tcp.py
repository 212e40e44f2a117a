"""The Handle protocol over TCP: kept-alive connections, one enveloped message each way."""

from __future__ import annotations

import itertools

from idnode.runtime import Clock
from idnode.verify.checks import check_wire
from idnode.verify.streams import StreamConnection, StreamPool
from idnode.verify.workload import Op, encode_resolution
from idnode.wire import peek
from idnode.wire.envelope import ENVELOPE_SIZE, MAX_MESSAGE_LENGTH


class TcpConnection(StreamConnection):
    def parse(self) -> tuple[bytes, bytes] | None:
        buf = self.buf
        if len(buf) < ENVELOPE_SIZE:
            return None
        length = peek.message_length(buf)
        if length > MAX_MESSAGE_LENGTH:
            raise ValueError(f"envelope announces {length} bytes")
        end = ENVELOPE_SIZE + length
        if len(buf) < end:
            return None
        answer = bytes(buf[:ENVELOPE_SIZE]), bytes(buf[ENVELOPE_SIZE:end])
        del buf[:end]
        return answer


def tcp_channel(
    host: str, port: int, *, connections: int, timeout: float, clock: Clock
) -> StreamPool:
    """Resolution over TCP to ``host:port`` through ``connections`` kept-alive connections;
    requests time out on ``clock``."""
    ids = itertools.count(1)

    def encode(op: Op) -> bytes:
        return encode_resolution(op.handle, op.type, next(ids) & 0x7FFFFFFF)

    def check(op: Op, got: object) -> tuple[str, str | None]:
        envelope, payload = got  # type: ignore[misc]
        return check_wire(op, envelope, payload)

    return StreamPool(
        host,
        port,
        size=connections,
        timeout=timeout,
        factory=TcpConnection,
        encode=encode,
        check=check,
        clock=clock,
    )
