"""Bounds-checked big-endian, length-prefixed byte codec: the primitives every binary layout
in idnode is built from (the wire messages of ``idnode.wire``, the key formats of
``idnode.crypto``, the authentication answers of ``idnode.auth``).

It lives at the core, beside ``errors`` and ``model``, so ``crypto`` can read HSJ's key bytes
without importing ``wire`` (``wire`` imports ``crypto`` to decode HS_PUBKEY; the reverse
import made a cycle).

``Reader`` never trusts a length or count field: it checks it against the bytes that are
actually left before slicing or allocating, and reports failures as ``MalformedMessage``
naming the field. ``Writer`` is the mirror image.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TypeVar

from idnode.errors import MalformedMessage

T = TypeVar("T")

_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")

MAX_COUNT = 1 << 20  # no honest list in a Handle message has a million entries


class Reader:
    """Reads big-endian fields from a bytes-like buffer, never past its end."""

    __slots__ = ("_buf", "_pos", "_end")

    def __init__(self, buf: bytes | bytearray | memoryview, start: int = 0, end: int | None = None):
        self._buf = bytes(buf) if not isinstance(buf, bytes) else buf
        self._pos = start
        self._end = len(self._buf) if end is None else min(end, len(self._buf))

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    @property
    def position(self) -> int:
        return self._pos

    def _need(self, n: int, field: str) -> None:
        if n < 0 or n > self._end - self._pos:
            raise MalformedMessage(
                f"needs {n} bytes but only {self._end - self._pos} remain", field=field
            )

    def u8(self, field: str) -> int:
        self._need(1, field)
        v = self._buf[self._pos]
        self._pos += 1
        return v

    def u16(self, field: str) -> int:
        self._need(2, field)
        (v,) = _U16.unpack_from(self._buf, self._pos)
        self._pos += 2
        return v

    def u32(self, field: str) -> int:
        self._need(4, field)
        (v,) = _U32.unpack_from(self._buf, self._pos)
        self._pos += 4
        return v

    def i32(self, field: str) -> int:
        v = self.u32(field)
        return v - (1 << 32) if v & 0x80000000 else v

    def raw(self, n: int, field: str) -> bytes:
        self._need(n, field)
        v = self._buf[self._pos : self._pos + n]
        self._pos += n
        return v

    def bytes32(self, field: str) -> bytes:
        """A 4-byte length followed by that many bytes."""
        n = self.u32(field + ".length")
        return self.raw(n, field)

    def utf8(self, field: str) -> str:
        """RFC 3652's UTF8-String: 4-byte length, then UTF-8 bytes."""
        data = self.bytes32(field)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage(f"invalid UTF-8 at byte {exc.start}", field=field) from None

    def count(self, field: str, min_item_size: int) -> int:
        """A 4-byte element count, checked against what could possibly fit."""
        n = self.u32(field + ".count")
        if n > MAX_COUNT or n * min_item_size > self.remaining:
            raise MalformedMessage(
                f"claims {n} entries but only {self.remaining} bytes remain", field=field
            )
        return n

    def sequence(self, field: str, min_item_size: int, item: Callable[[Reader], T]) -> list[T]:
        return [item(self) for _ in range(self.count(field, min_item_size))]

    def rest(self) -> bytes:
        v = self._buf[self._pos : self._end]
        self._pos = self._end
        return v

    def expect_end(self, field: str) -> None:
        if self._pos != self._end:
            extra = self._end - self._pos
            raise MalformedMessage(f"{extra} unexpected trailing bytes", field=field)


class Writer:
    """Accumulates big-endian fields; ``getvalue`` returns the bytes."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, v: int) -> Writer:
        self._parts.append(_U8.pack(v))
        return self

    def u16(self, v: int) -> Writer:
        self._parts.append(_U16.pack(v))
        return self

    def u32(self, v: int) -> Writer:
        self._parts.append(_U32.pack(v & 0xFFFFFFFF))
        return self

    def raw(self, data: bytes) -> Writer:
        self._parts.append(bytes(data))
        return self

    def bytes32(self, data: bytes) -> Writer:
        self._parts.append(_U32.pack(len(data)))
        self._parts.append(bytes(data))
        return self

    def utf8(self, text: str) -> Writer:
        return self.bytes32(text.encode("utf-8"))

    def getvalue(self) -> bytes:
        return b"".join(self._parts)

    def __len__(self) -> int:
        return sum(len(p) for p in self._parts)
