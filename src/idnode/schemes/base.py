"""What a scheme plugin is: a name form it recognises, parsed, validated and mapped.

A scheme maps its form (``urn:oid:1.2.156.1``) onto one Handle identifier under the prefix
the operator configured for it (``20.500.77/oid/1.2.156.1``), and a Handle name of that shape
back onto its form, so a scan of either resolves the same record. A malformed name raises
``SchemeError`` (an ``InvalidHandle``): 400 over HTTP, INVALID_HANDLE on the wire, a one-line
CLI error.
"""

from __future__ import annotations

from typing import Protocol

from idnode.errors import InvalidHandle


class SchemeError(InvalidHandle):
    """A name in a scheme's form that breaks the scheme's syntax (the message says how)."""


class Scheme(Protocol):
    """One identifier scheme. ``prefix`` is the Handle prefix its identifiers live under."""

    name: str
    prefix: str

    def recognises(self, text: str) -> bool:
        """Whether ``text`` is written in this scheme's form (``urn:oid:...``); cheap, no
        validation: a recognised but malformed name is the scheme's to refuse."""
        ...

    def to_handle(self, text: str) -> str:
        """The Handle name of ``text``; ``SchemeError`` when it is malformed."""
        ...

    def from_handle(self, handle: str) -> str | None:
        """The scheme's form of a Handle name it maps, or None for any other handle."""
        ...


def strip_tag(text: str, tags: tuple[str, ...]) -> str | None:
    """``text`` without the first of ``tags`` it starts with (case-insensitively), or None."""
    lowered = text.lower()
    for tag in tags:
        if lowered.startswith(tag):
            return text[len(tag) :]
    return None


def under_prefix(prefix: str, handle: str, tag: str) -> str | None:
    """The rest of ``handle`` after ``<prefix>/<tag>/``, compared case-insensitively."""
    head = f"{prefix}/{tag}/"
    if handle[: len(head)].lower() != head.lower():
        return None
    return handle[len(head) :]
