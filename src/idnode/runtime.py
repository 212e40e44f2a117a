"""Time and randomness: the one module that reads the machine's clock and entropy.

Every other module takes a ``Clock`` and a ``Random`` from its caller, so a test can move the
date to a month end, a leap day or next year, replay a run with the same nonces, or advance a
timeout without sleeping. Production builds the real ones once per process with ``system()``
(``idnode.cli_common.RUNTIME`` for commands; ``idnode serve``'s workers receive it from their
supervisor) and passes them down; ``tests/test_runtime_sources.py`` fails on any other module
that reads ``time.time``, ``time.monotonic``, ``datetime.now``, ``os.urandom``, ``secrets`` or
``uuid4`` on its own.

A ``Clock`` is called for wall time (seconds since the epoch, as ``time.time``), so code that
only needs "now" takes it as a plain ``Callable[[], float]``; ``clock.monotonic()`` is for
durations and deadlines. A ``Random`` is called for ``n`` bytes, as ``os.urandom``.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import random as _random
import time
import uuid
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def __call__(self) -> float:
        """Wall time in seconds since the epoch (UTC)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: for durations, never for dates."""

    def monotonic_ns(self) -> int:
        """``monotonic`` in integer nanoseconds: for latency histograms."""


class Random(Protocol):
    def __call__(self, n: int, /) -> bytes:
        """``n`` random bytes (cryptographically strong in production)."""


class SystemClock:
    """The machine's clocks."""

    # the C functions themselves, not methods calling them: a clock is read several times on
    # every request (expirations, rate buckets, the statistics' window), and a Python frame
    # in between cost as much as the read
    __call__ = staticmethod(time.time)
    monotonic = staticmethod(time.monotonic)
    monotonic_ns = staticmethod(time.monotonic_ns)

    def __repr__(self) -> str:
        return "SystemClock()"


class SystemRandom:
    """The operating system's entropy (``os.urandom``)."""

    def __call__(self, n: int, /) -> bytes:
        return os.urandom(n)

    def __repr__(self) -> str:
        return "SystemRandom()"


class ManualClock:
    """A clock that moves only when told: tests set dates and advance timeouts with it."""

    def __init__(self, wall: float = 1_793_577_600.0, monotonic: float = 1_000.0) -> None:
        self.wall = float(wall)  # default: 2026-11-02T00:00:00Z
        self.mono = float(monotonic)

    def __call__(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def monotonic_ns(self) -> int:
        return int(self.mono * 1e9)

    def advance(self, seconds: float) -> None:
        """Both clocks move forward ``seconds``."""
        self.wall += seconds
        self.mono += seconds

    def set(self, when: float | dt.datetime) -> None:
        """Jump the wall clock (the monotonic one does not follow: it never goes back)."""
        self.wall = when.timestamp() if isinstance(when, dt.datetime) else float(when)

    def __repr__(self) -> str:
        return f"ManualClock({self.wall!r}, {self.mono!r})"


class SeededRandom:
    """Reproducible bytes from a seed: tests, and load generators that must replay a run.
    Never for keys or nonces of a serving node."""

    def __init__(self, seed: int | str | bytes = 0) -> None:
        self._rng = _random.Random(seed)

    def __call__(self, n: int, /) -> bytes:
        return self._rng.randbytes(n)


@dataclass(frozen=True)
class Runtime:
    """The clock and random source of one process, passed from its entry point down."""

    clock: Clock
    random: Random


# Entropy for primitives called like ``cryptography``'s own (an SM2 signature's k, a salt, an
# IV, a client's cnonce) and for a client's request ids (which, like DNS query ids, defeat
# spoofed answers): as OpenSSL does inside that library, they draw from the operating system
# unless the caller passes a source. Nothing a node stores, compares or times out comes from
# it: identifiers, tokens, session ids and challenge nonces come from the node's
# ``Runtime.random``, times from its ``Runtime.clock``.
ENTROPY: Random = SystemRandom()


def system() -> Runtime:
    """The real clock and entropy; called only by process entry points."""
    return Runtime(SystemClock(), SystemRandom())


def fixed(wall: float = 1_793_577_600.0, seed: int = 0) -> Runtime:
    """A ``ManualClock`` at ``wall`` and a ``SeededRandom``: a deterministic runtime."""
    return Runtime(ManualClock(wall), SeededRandom(seed))


# -- what the standard library offers for its own sources, on ours ------------------------------


def token_urlsafe(random: Random, nbytes: int = 32) -> str:
    """As ``secrets.token_urlsafe``."""
    return base64.urlsafe_b64encode(random(nbytes)).rstrip(b"=").decode("ascii")


def token_hex(random: Random, nbytes: int = 16) -> str:
    """As ``secrets.token_hex``."""
    return random(nbytes).hex()


def randbits(random: Random, k: int) -> int:
    """As ``secrets.randbits``: a non-negative int of ``k`` random bits."""
    return int.from_bytes(random((k + 7) // 8), "big") >> (-k % 8)


def uuid4(random: Random) -> uuid.UUID:
    """As ``uuid.uuid4``, from ``random``."""
    return uuid.UUID(bytes=random(16), version=4)


def utc(clock: Clock) -> dt.datetime:
    """The clock's wall time as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(clock(), dt.UTC)
