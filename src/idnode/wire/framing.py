"""Getting whole messages out of datagrams and byte streams, and back.

UDP (as HSJ does it): a message whose payload exceeds 492 bytes (512-byte packet minus the
20-byte envelope) is cut into 492-byte pieces. Every piece carries a full envelope with the
same request id, the TOTAL message length, and its sequence number; piece ``n`` holds payload
bytes ``n*492 .. n*492+491``. Senders set the truncated flag on multi-packet *requests*;
HSJ servers do not always set it on multi-packet responses, so a message length larger than
the piece is treated as multi-packet too. HSJ waits 5 s for missing pieces.

TCP: each message is one envelope followed by exactly ``message_length`` payload bytes;
several messages may follow each other on one connection (continuous CN responses, kept-alive
requests). HSJ never splits a message over several envelopes on TCP.

Nothing here allocates according to a length field: lengths are checked against the limit
first, and buffers only ever hold bytes that actually arrived.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field, replace

from idnode.errors import MalformedMessage
from idnode.wire.envelope import (
    ENVELOPE_SIZE,
    MAX_MESSAGE_LENGTH,
    Envelope,
    decode_envelope,
    encode_envelope,
)

MAX_UDP_PACKET = 512
UDP_CHUNK = MAX_UDP_PACKET - ENVELOPE_SIZE  # 492: the fixed piece size offsets are based on
DEFAULT_UDP_TIMEOUT = 5.0  # seconds HSJ waits for the rest of a multi-packet request


def split_datagrams(
    envelope: Envelope, payload: bytes, max_packet: int = MAX_UDP_PACKET
) -> list[bytes]:
    """The datagrams carrying ``payload``: one if it fits, else ``max_packet``-sized pieces.

    Interoperable receivers (HSJ, ``UdpReassembler``) place piece ``n`` at ``n*492``, so
    leave ``max_packet`` at 512 unless both ends agree otherwise.
    """
    chunk = max_packet - ENVELOPE_SIZE
    if chunk <= 0:
        raise ValueError(f"max_packet must exceed the {ENVELOPE_SIZE}-byte envelope")
    total = len(payload)
    count = max(1, -(-total // chunk))
    base = replace(envelope, message_length=total, truncated=count > 1)
    out = []
    for seq in range(count):
        env = replace(base, sequence=seq)
        out.append(encode_envelope(env) + bytes(payload[seq * chunk : (seq + 1) * chunk]))
    return out


@dataclass(slots=True)
class _Partial:
    envelope: Envelope
    started: float
    count: int
    pieces: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class UdpReassembler:
    """Collects the pieces of multi-packet UDP messages.

    ``feed`` returns ``(envelope, payload)`` once a message is complete (at once for single
    datagrams) and None while pieces are missing. Partials are keyed by (peer, request id),
    expire ``timeout`` seconds after their first piece (time is passed in), and are bounded
    in number (``max_pending``) and bytes (``max_pending_bytes``): beyond that the oldest
    partial is dropped. A bad piece (wrong size, sequence out of range, duplicate, length
    disagreeing with earlier pieces) raises ``MalformedMessage``.
    """

    def __init__(
        self,
        max_message: int = MAX_MESSAGE_LENGTH,
        max_pending: int = 1024,
        *,
        timeout: float = DEFAULT_UDP_TIMEOUT,
        max_pending_bytes: int = 16 << 20,
        chunk: int = UDP_CHUNK,
    ) -> None:
        self.max_message = max_message
        self.max_pending = max_pending
        self.timeout = timeout
        self.max_pending_bytes = max_pending_bytes
        self.chunk = chunk
        self._partials: dict[tuple[Hashable, int], _Partial] = {}
        self._bytes = 0

    @property
    def pending(self) -> int:
        """Number of incomplete messages held."""
        return len(self._partials)

    @property
    def pending_bytes(self) -> int:
        return self._bytes

    def feed(
        self, datagram: bytes, now: float, peer: Hashable = None
    ) -> tuple[Envelope, bytes] | None:
        self.expire(now)
        env = decode_envelope(datagram, self.max_message)
        piece = bytes(datagram[ENVELOPE_SIZE:])
        total = env.message_length
        if not env.truncated and total <= self.chunk:
            if len(piece) < total:
                raise MalformedMessage(
                    f"datagram carries {len(piece)} of {total} payload bytes",
                    field="envelope.message_length",
                )
            if env.sequence != 0:
                raise MalformedMessage(
                    f"sequence {env.sequence} in a single-packet message", field="envelope.sequence"
                )
            return env, piece[:total]  # HSJ ignores bytes past message_length, so do we
        return self._add_piece(env, piece, now, peer)

    def _add_piece(
        self, env: Envelope, piece: bytes, now: float, peer: Hashable
    ) -> tuple[Envelope, bytes] | None:
        total = env.message_length
        count = max(1, -(-total // self.chunk))
        seq = env.sequence
        if seq >= count:
            raise MalformedMessage(
                f"sequence {seq} beyond the {count} pieces of a {total}-byte message",
                field="envelope.sequence",
            )
        expected = self.chunk if seq < count - 1 else total - (count - 1) * self.chunk
        if len(piece) != expected:
            raise MalformedMessage(
                f"piece {seq} carries {len(piece)} bytes, expected {expected}",
                field="datagram",
            )
        key = (peer, env.request_id)
        partial = self._partials.get(key)
        if partial is None:
            partial = _Partial(replace(env, sequence=0), now, count)
            self._partials[key] = partial
        elif partial.envelope.message_length != total:
            self._drop(key)
            raise MalformedMessage(
                "pieces of one request disagree on the message length",
                field="envelope.message_length",
            )
        if seq in partial.pieces:
            raise MalformedMessage(f"duplicate piece {seq}", field="envelope.sequence")
        partial.pieces[seq] = piece
        partial.size += len(piece)
        self._bytes += len(piece)
        if seq == 0:
            partial.envelope = replace(env, sequence=0)
        if len(partial.pieces) == partial.count:
            self._drop(key)
            payload = b"".join(partial.pieces[i] for i in range(partial.count))
            return partial.envelope, payload
        self._enforce_bounds(key)
        return None

    def expire(self, now: float) -> int:
        """Drop partials older than the timeout; returns how many were dropped."""
        dropped = 0
        for key, partial in list(self._partials.items()):  # insertion order = age order
            if now - partial.started < self.timeout:
                break
            self._drop(key)
            dropped += 1
        return dropped

    def _enforce_bounds(self, keep: tuple[Hashable, int]) -> None:
        while self._partials and (
            len(self._partials) > self.max_pending or self._bytes > self.max_pending_bytes
        ):
            oldest = next(iter(self._partials))
            self._drop(oldest)
            if oldest == keep:
                break

    def _drop(self, key: tuple[Hashable, int]) -> None:
        partial = self._partials.pop(key, None)
        if partial is not None:
            self._bytes -= partial.size


class TcpFramer:
    """Splits a TCP byte stream into ``(envelope, payload)`` messages.

    Feed whatever ``recv`` returned; get back the messages completed by it (possibly none,
    possibly several). A ``MalformedMessage`` (e.g. an absurd message length) leaves the
    stream unusable: the framer keeps raising and the connection should be closed.
    """

    def __init__(self, max_message: int = MAX_MESSAGE_LENGTH) -> None:
        self.max_message = max_message
        self._buf = bytearray()
        self._env: Envelope | None = None
        self._error: MalformedMessage | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet returned in a message."""
        return len(self._buf) + (ENVELOPE_SIZE if self._env is not None else 0)

    def feed(self, data: bytes) -> list[tuple[Envelope, bytes]]:
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[tuple[Envelope, bytes]] = []
        try:
            while True:
                if self._env is None:
                    if len(self._buf) < ENVELOPE_SIZE:
                        break
                    self._env = decode_envelope(bytes(self._buf[:ENVELOPE_SIZE]), self.max_message)
                    del self._buf[:ENVELOPE_SIZE]
                length = self._env.message_length
                if len(self._buf) < length:
                    break
                out.append((self._env, bytes(self._buf[:length])))
                del self._buf[:length]
                self._env = None
        except MalformedMessage as exc:
            self._error = exc
            self._buf.clear()
            raise
        return out


def is_truncated_answer(envelope: Envelope) -> bool:
    """A UDP answer cut for anti-amplification: TC set on a message that fits one datagram.

    A real multi-datagram message also has TC, but then its length exceeds one piece; a
    header-only message flagged TC says "ask me again over TCP".
    """
    return envelope.truncated and envelope.message_length <= UDP_CHUNK
