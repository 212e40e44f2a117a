"""Answers written at the end of the event loop's turn, every connection's together.

Why: a client sleeping in ``epoll_wait`` is woken by the first byte written to any of its
connections, from inside our ``write`` (on loopback and in virtual machines an
inter-processor interrupt). A node answering the 64 connections of one load generator
woke it once per answer; written back to back at the end of the turn, the first write wakes
it and the others find it awake. REST store path under ``wrk -c64``: 17,000-19,600
answers/s before, 24,000-27,600/s after, p99 lower (docs/performance.md, round 7).

A connection's answers keep their order: a ``Cork`` is flushed before anything else the
connection writes or before it closes (its owner calls ``flush``), and the turn's flush is
scheduled when the first answer is corked, so it runs before any callback scheduled after
that answer (a task that will write the next answer on the connection among them).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Protocol

FLUSH_AT = 64 * 1024  # bytes a connection may hold back; beyond, written at once, so the
# transport's flow control (pause_writing) sees them as it did when each answer was written

_WRITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, TurnWriter] = (
    weakref.WeakKeyDictionary()
)


class Flushable(Protocol):
    def flush(self) -> None: ...


class TurnWriter:
    """What one loop has waiting to be written (``Cork``s, UDP's ``DatagramBatcher``),
    flushed in one callback."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: list[Flushable] = []

    def due(self, cork: Flushable) -> None:
        if not self._due:
            self._loop.call_soon(self._flush)
        self._due.append(cork)

    def _flush(self) -> None:
        due, self._due = self._due, []
        for cork in due:
            cork.flush()


def turn_writer(loop: asyncio.AbstractEventLoop | None = None) -> TurnWriter:
    """The running loop's writer (one per loop)."""
    loop = loop or asyncio.get_running_loop()
    writer = _WRITERS.get(loop)
    if writer is None:
        writer = _WRITERS[loop] = TurnWriter(loop)
    return writer


class Cork:
    """One connection's answers of this turn."""

    __slots__ = ("transport", "_chunks", "_size", "_writer")

    def __init__(self, transport: Any, writer: TurnWriter) -> None:
        self.transport = transport
        self._writer = writer
        self._chunks: list[bytes] = []
        self._size = 0

    def __len__(self) -> int:
        return len(self._chunks)

    def write(self, data: bytes) -> None:
        if not self._chunks:
            self._writer.due(self)
        self._chunks.append(data)
        self._size += len(data)
        if self._size >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Write what is corked now (before the connection writes anything else, or closes)."""
        chunks = self._chunks
        if chunks:
            self._chunks, self._size = [], 0
            if not self.transport.is_closing():
                self.transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def drop(self) -> None:
        """The connection is gone: nothing to write."""
        self._chunks, self._size = [], 0
