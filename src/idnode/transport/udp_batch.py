"""Datagrams sent in batches: one ``sendmmsg`` system call for the answers of a turn.

Why: on loopback and in virtual machines, a datagram sent to a client that sleeps in
``recv`` wakes it up from inside our ``sendto`` (an inter-processor interrupt; under
`perf` 15 % of the node's samples on the store path). Sent one by one, every answer pays
that wake-up; sent together, the first answer wakes the client and the others find it
awake (docs/performance.md, round 7).

Python's ``socket`` module has no ``sendmmsg``, so this calls the C library's through
``ctypes``, on 64-bit Linux only. The C arrays are written with one ``struct.pack_into``
a batch (the datagrams copied into one buffer, the headers packed in one call): setting
ctypes fields one by one cost more than the system calls it saved. Anywhere else, for a
datagram too large for a slot, or when the transport holds datagrams of its own (the
socket was full), datagrams go through ``transport.sendto`` as before, in order.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import socket
import struct
import sys
from typing import Any

from idnode.transport.turn_writes import turn_writer

BATCH = 64  # datagrams a system call; a turn's answers are fewer (udp.FAIR_BATCH)
SLOT = 2048  # the largest datagram batched; UDP answers are at most 512 (udp.MAX_DATAGRAM)
_ADDRESSES = 1024  # client addresses kept encoded; beyond, the table starts again
_NAME = 28  # room for a sockaddr_in6

# struct mmsghdr and struct iovec of LP64 Linux: the message header's fields are
# msg_name, msg_namelen (+4 padding), msg_iov, msg_iovlen, msg_control, msg_controllen,
# msg_flags (+4), then mmsghdr's msg_len (+4)
_MMSGHDR = struct.Struct("=QI4xQQQQi4xI4x")
_IOVEC = struct.Struct("=QQ")


def _libc_sendmmsg() -> Any:
    """The C library's ``sendmmsg``, or None where there is none (or another ABI)."""
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
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
    """``send`` now, leave at the end of the turn (``flush``, or the turn's writer).

    ``batched``: whether ``sendmmsg`` is used at all; ``system_calls`` counts its calls
    (``sent_batched`` the datagrams they carried), so tests and operators can see the
    batching happen.
    """

    def __init__(self, transport: Any, loop: Any, *, batched: bool | None = None) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        family = getattr(sock, "family", None)
        self._family = family
        self._fd = sock.fileno() if sock is not None else -1
        usable = (
            _SENDMMSG is not None and self._fd >= 0 and family in (socket.AF_INET, socket.AF_INET6)
        )
        self.batched = usable if batched is None else batched and usable
        self._pending: list[tuple[bytes, Any]] = []
        self._turn = turn_writer(loop)  # flushes at the turn's end, with TCP's and HTTP's
        self._names: dict[Any, tuple[int, int]] = {}  # addr -> (address, length) in _name_area
        self.system_calls = 0
        self.sent_batched = 0
        if self.batched:
            self._data = ctypes.create_string_buffer(BATCH * SLOT)
            self._name_area = ctypes.create_string_buffer(_ADDRESSES * _NAME)
            self._headers = ctypes.create_string_buffer(BATCH * _MMSGHDR.size)
            self._iovecs = ctypes.create_string_buffer(BATCH * _IOVEC.size)
            iovecs = ctypes.addressof(self._iovecs)
            self._iovec_at = [iovecs + n * _IOVEC.size for n in range(BATCH)]
            self._packers: dict[int, tuple[struct.Struct, struct.Struct]] = {}

    def send(self, datagram: bytes, addr: Any) -> None:
        if not self.batched or len(datagram) > SLOT:
            self.transport.sendto(datagram, addr)
            return
        if not self._pending:
            self._turn.due(self)
        self._pending.append((datagram, addr))

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
            self._through_transport(pending)  # behind what the transport queued
            return
        while pending:
            batch, pending = pending[:BATCH], pending[BATCH:]
            count = len(batch)
            self._prepare(batch)
            sent = _SENDMMSG(self._fd, self._headers, count, socket.MSG_DONTWAIT)
            self.system_calls += 1
            if sent <= 0:
                # the socket is full (EAGAIN) or refused the first one: the transport takes
                # the rest, queueing, dropping or reporting as it does for any datagram
                self._through_transport(batch + pending)
                return
            self.sent_batched += sent
            if sent < count:
                pending = batch[sent:] + pending

    def _prepare(self, batch: list[tuple[bytes, Any]]) -> None:
        """The datagrams into the buffer, and the iovec and mmsghdr arrays that point there."""
        names = self._names
        if len(names) + len(batch) > _ADDRESSES:
            names.clear()  # (never during a batch: its names stay where they were written)
        blob = b"".join([datagram for datagram, _ in batch])  # one after another
        position = ctypes.addressof(self._data)
        ctypes.memmove(position, blob, len(blob))
        iovec_fields: list[int] = []
        header_fields: list[int] = []
        iovec_at = self._iovec_at
        for slot, (datagram, addr) in enumerate(batch):
            name = names.get(addr)
            if name is None:
                name = self._remember(addr)
            size = len(datagram)
            iovec_fields += (position, size)
            position += size
            header_fields += (name[0], name[1], iovec_at[slot], 1, 0, 0, 0, 0)
        iovec_packer, header_packer = self._packer(len(batch))
        iovec_packer.pack_into(self._iovecs, 0, *iovec_fields)
        header_packer.pack_into(self._headers, 0, *header_fields)

    def _packer(self, count: int) -> tuple[struct.Struct, struct.Struct]:
        packers = self._packers.get(count)
        if packers is None:
            packers = self._packers[count] = (
                struct.Struct("=" + _IOVEC.format[1:] * count),
                struct.Struct("=" + _MMSGHDR.format[1:] * count),
            )
        return packers

    def _remember(self, addr: Any) -> tuple[int, int]:
        encoded = sockaddr(self._family, addr)
        offset = len(self._names) * _NAME
        ctypes.memmove(ctypes.addressof(self._name_area) + offset, encoded, len(encoded))
        name = self._names[addr] = (ctypes.addressof(self._name_area) + offset, len(encoded))
        return name

    def _through_transport(self, pending: list[tuple[bytes, Any]]) -> None:
        for datagram, addr in pending:
            self.transport.sendto(datagram, addr)
