"""Datagrams sent in batches: one ``sendmmsg`` system call for the answers of a turn.

Why: on loopback and in virtual machines, a datagram sent to a client that sleeps in
``recv`` wakes it up from inside our ``sendto`` (an inter-processor interrupt; under
`perf` 15 % of the node's samples on the store path). Sent one by one, every answer pays
that wake-up; sent together, the first answer wakes the client and the others find it
awake. Measured with a uvloop server doing 20 µs of work a datagram: 31,000 answers/s
one by one, 37,000/s in batches (docs/performance.md, round 7).

Python's ``socket`` module has no ``sendmmsg``, so this calls the C library's through
``ctypes``, on Linux only; anywhere else, or when the transport has queued datagrams of
its own (the socket was full), every datagram goes through ``transport.sendto`` as before,
in order.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import socket
import struct
import sys
from typing import Any

log = logging.getLogger("idnode.udp")

BATCH = 64  # datagrams a system call; a turn's answers are fewer (udp.FAIR_BATCH)
_ADDRESSES = 4096  # encoded client addresses kept; beyond, the table starts again


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_char_p), ("length", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("name_length", ctypes.c_uint32),
        ("iov", ctypes.POINTER(_IoVec)),
        ("iov_length", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("control_length", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("header", _MsgHdr), ("sent", ctypes.c_uint)]


def _libc_sendmmsg() -> Any:
    """The C library's ``sendmmsg``, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.sendmmsg
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    function.restype = ctypes.c_int
    return function


_SENDMMSG = _libc_sendmmsg()


def sockaddr(family: int, addr: tuple) -> bytes:
    """The C ``sockaddr_in``/``sockaddr_in6`` of an address as asyncio gives it."""
    if family == socket.AF_INET:
        return struct.pack("=H", family) + struct.pack("!H4s8x", addr[1], socket.inet_aton(addr[0]))
    flowinfo = addr[2] if len(addr) > 2 else 0
    scope = addr[3] if len(addr) > 3 else 0
    packed = socket.inet_pton(socket.AF_INET6, addr[0])
    return (
        struct.pack("=H", family)
        + struct.pack("!HI16s", addr[1], flowinfo, packed)
        + (struct.pack("=I", scope))
    )


class DatagramBatcher:
    """``send`` now, leave at the end of the turn (``flush``, or the loop's next callback).

    ``batched``: whether ``sendmmsg`` is used at all; ``system_calls`` counts its calls
    (``sent_batched`` the datagrams they carried), so tests and operators can see the
    batching happen.
    """

    def __init__(self, transport: Any, loop: Any, *, batched: bool | None = None) -> None:
        self.transport = transport
        self._loop = loop
        sock = transport.get_extra_info("socket")
        family = getattr(sock, "family", None)
        self._family = family
        self._fd = sock.fileno() if sock is not None else -1
        usable = (
            _SENDMMSG is not None and self._fd >= 0 and family in (socket.AF_INET, socket.AF_INET6)
        )
        self.batched = usable if batched is None else batched and usable
        self._pending: list[tuple[bytes, Any]] = []
        self._scheduled = False
        self._names: dict[Any, bytes] = {}
        self.system_calls = 0
        self.sent_batched = 0
        if self.batched:
            self._iovecs = (_IoVec * BATCH)()
            self._messages = (_MMsgHdr * BATCH)()
            for message, iovec in zip(self._messages, self._iovecs, strict=True):
                message.header.iov = ctypes.pointer(iovec)
                message.header.iov_length = 1

    def send(self, datagram: bytes, addr: Any) -> None:
        if not self.batched:
            self.transport.sendto(datagram, addr)
            return
        self._pending.append((datagram, addr))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        """Send what is pending: in ``sendmmsg`` calls while the socket takes them, through
        the transport (which queues or drops, and reports errors) for the rest."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self.transport.is_closing():
            return
        if self.transport.get_write_buffer_size():
            self._through_transport(pending, 0)  # behind what the transport queued
            return
        start = 0
        while start < len(pending):
            count = self._prepare(pending, start)
            sent = _SENDMMSG(self._fd, self._messages, count, socket.MSG_DONTWAIT)
            self.system_calls += 1
            if sent <= 0:
                # the socket is full (EAGAIN) or refused the first one: the transport takes
                # the rest, queueing, dropping or reporting as it does for any datagram
                self._through_transport(pending, start)
                return
            self.sent_batched += sent
            start += sent

    def _prepare(self, pending: list[tuple[bytes, Any]], start: int) -> int:
        count = min(BATCH, len(pending) - start)
        names = self._names
        for slot in range(count):
            datagram, addr = pending[start + slot]
            name = names.get(addr)
            if name is None:
                if len(names) >= _ADDRESSES:
                    names.clear()
                name = names[addr] = sockaddr(self._family, addr)
            header = self._messages[slot].header
            header.name = name
            header.name_length = len(name)
            iovec = self._iovecs[slot]
            iovec.base = datagram
            iovec.length = len(datagram)
        return count

    def _through_transport(self, pending: list[tuple[bytes, Any]], start: int) -> None:
        for datagram, addr in pending[start:]:
            self.transport.sendto(datagram, addr)
