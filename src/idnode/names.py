"""Names of handles and prefixes: one place that knows how a name is built.

A handle is ``prefix/suffix``; a prefix (naming authority) is dotted, ``88.123.4567``, and
its parent is what comes before the last dot; the prefix handle ``0.NA/88.123`` describes the
prefix ``88.123``. Names compare case-insensitively (``model.handle_key``). Code asks these
functions and value types for the parts instead of splitting strings by hand:
``HandleName`` and ``Prefix`` where a name is handled as a thing (parsed once, its parent
walked), the plain functions ``prefix_part`` / ``prefix_key`` on hot paths where building an
object per request would cost more than the lookup it serves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from idnode.errors import InvalidHandle
from idnode.model import handle_key

MAX_HANDLE_BYTES = 4096
NA_PREFIX_KEY = "0.NA"
NA_PREFIX = "0.NA/"


def prefix_part(handle: str) -> str:
    """The prefix of ``handle`` as written (all of it when it has no slash)."""
    return handle.partition("/")[0]


def suffix_part(handle: str) -> str:
    return handle.partition("/")[2]


def prefix_key(handle: str) -> str | None:
    """The lookup key of ``handle``'s prefix, or None for a name without a slash."""
    prefix, slash, _ = handle.partition("/")
    return handle_key(prefix) if slash else None


def parent_prefix(prefix: str) -> str:
    """``88.123`` of ``88.123.4567``; "" for a top-level prefix."""
    return prefix.rpartition(".")[0]


@dataclass(frozen=True, slots=True)
class Prefix:
    """A naming authority: ``88.123.4567``."""

    text: str

    @classmethod
    def parse(cls, text: str) -> Prefix:
        text = text.strip() if isinstance(text, str) else text
        if not isinstance(text, str) or not text:
            raise InvalidHandle("a prefix must be a non-empty string")
        if "/" in text or any(c.isspace() or ord(c) < 0x20 for c in text):
            raise InvalidHandle(f"invalid prefix {text!r}: no slash, space or control character")
        return cls(text)

    @property
    def key(self) -> str:
        return handle_key(self.text)

    @property
    def parent(self) -> Prefix | None:
        up = parent_prefix(self.text)
        return Prefix(up) if up else None

    def lineage(self) -> Iterator[Prefix]:
        """This prefix, then each parent up to the top: ``88.123.4567``, ``88.123``, ``88``."""
        at: Prefix | None = self
        while at is not None:
            yield at
            at = at.parent

    def is_under(self, other: Prefix) -> bool:
        """Strictly below ``other`` (``88.123`` is under ``88``, ``88`` is not under itself)."""
        return self.key.startswith(other.key + ".")

    @property
    def handle(self) -> str:
        """Its prefix handle, ``0.NA/<prefix>``."""
        return NA_PREFIX + self.text

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class HandleName:
    """A handle name, checked: ``prefix/suffix``."""

    text: str

    @classmethod
    def parse(cls, text: str) -> HandleName:
        return cls(check_handle(text))

    @property
    def prefix(self) -> Prefix:
        return Prefix(prefix_part(self.text))

    @property
    def suffix(self) -> str:
        return suffix_part(self.text)

    @property
    def key(self) -> str:
        return handle_key(self.text)

    @property
    def is_prefix_handle(self) -> bool:
        """``0.NA/...``: the handle describing a prefix."""
        return self.prefix.key == NA_PREFIX_KEY

    @property
    def named_prefix(self) -> Prefix | None:
        """The prefix a prefix handle describes (``88.123`` of ``0.NA/88.123``), else None."""
        return Prefix(self.suffix) if self.is_prefix_handle else None

    def __str__(self) -> str:
        return self.text


_CONTROL = re.compile("[\x00-\x1f\x7f]")  # (a regex: on every resolution, 10x a loop)


def check_handle(handle: str) -> str:
    """Return ``handle`` if it is a well-formed ``prefix/suffix`` name, else raise InvalidHandle."""
    if not handle:
        raise InvalidHandle("empty handle")
    if len(handle.encode("utf-8")) > MAX_HANDLE_BYTES:
        raise InvalidHandle(f"handle longer than {MAX_HANDLE_BYTES} bytes")
    prefix, slash, suffix = handle.partition("/")
    if not slash or not prefix or not suffix:
        raise InvalidHandle(f"handle {handle!r} is not of the form prefix/suffix")
    if _CONTROL.search(handle) is not None:
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
        return key in self._keys or self._homes_parent_of(key)

    def _homes_parent_of(self, key: str) -> bool:
        # walk up the dotted hierarchy: 20.500.123.7 -> 20.500.123 -> 20.500 -> 20
        while key := parent_prefix(key):
            if key in self._keys:
                return True
        return False

    def responsible_for(self, handle: str) -> bool:
        """A node homing ``0.NA`` (the root of the hierarchy) keeps every prefix handle.
        (Asked on every uncached resolution: one split, one key, a set lookup.)"""
        prefix, _, suffix = handle.partition("/")
        key = handle_key(prefix)
        if key == NA_PREFIX_KEY:
            return self.homes_prefix(suffix) or NA_PREFIX_KEY in self._keys
        return key in self._keys or self._homes_parent_of(key)
