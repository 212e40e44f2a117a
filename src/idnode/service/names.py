"""Rules about handle names: validity and which prefixes a node is responsible for."""

from __future__ import annotations

from collections.abc import Iterable

from idnode.errors import InvalidHandle
from idnode.model import handle_key

MAX_HANDLE_BYTES = 4096
NA_PREFIX_KEY = "0.NA"


def check_handle(handle: str) -> str:
    """Return ``handle`` if it is a well-formed ``prefix/suffix`` name, else raise InvalidHandle."""
    if not handle:
        raise InvalidHandle("empty handle")
    if len(handle.encode("utf-8")) > MAX_HANDLE_BYTES:
        raise InvalidHandle(f"handle longer than {MAX_HANDLE_BYTES} bytes")
    prefix, slash, suffix = handle.partition("/")
    if not slash or not prefix or not suffix:
        raise InvalidHandle(f"handle {handle!r} is not of the form prefix/suffix")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in handle):
        raise InvalidHandle("handle contains control characters")
    return handle


class PrefixSet:
    """The prefixes a node homes, matched case-insensitively.

    A node that homes ``20.500.123`` answers for ``20.500.123/x``, for derived prefixes such as
    ``20.500.123.7/x`` (until they are delegated elsewhere), and for the prefix handles
    ``0.NA/20.500.123`` and ``0.NA/20.500.123.7`` that describe them.
    """

    def __init__(self, prefixes: Iterable[str] = ()) -> None:
        self._keys: set[str] = {handle_key(p) for p in prefixes}

    def add(self, prefix: str) -> None:
        self._keys.add(handle_key(prefix))

    def discard(self, prefix: str) -> None:
        self._keys.discard(handle_key(prefix))

    def __iter__(self):
        return iter(sorted(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def homes_prefix(self, prefix: str) -> bool:
        key = handle_key(prefix)
        if key in self._keys:
            return True
        # walk up the dotted hierarchy: 20.500.123.7 -> 20.500.123 -> 20.500 -> 20
        while "." in key:
            key = key.rsplit(".", 1)[0]
            if key in self._keys:
                return True
        return False

    def responsible_for(self, handle: str) -> bool:
        """A node homing ``0.NA`` (the root of the hierarchy) keeps every prefix handle."""
        prefix, _, suffix = handle.partition("/")
        if handle_key(prefix) == NA_PREFIX_KEY:
            return self.homes_prefix(suffix) or NA_PREFIX_KEY in self._keys
        return self.homes_prefix(prefix)
