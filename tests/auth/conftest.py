"""Shared fixtures for the auth tests: a fake clock, counting randomness, real keys."""

from __future__ import annotations

import hashlib

import pytest

from idnode.crypto.keys import generate_key


class FakeClock:
    """A settable clock: ``clock.now += 61`` moves time on."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeRandom:
    """Deterministic, distinct bytes: SHA-256 of a counter, repeated as needed."""

    def __init__(self, seed: bytes = b"idnode") -> None:
        self.seed = seed
        self.calls = 0

    def __call__(self, n: int) -> bytes:
        self.calls += 1
        out = b""
        block = 0
        while len(out) < n:
            out += hashlib.sha256(self.seed + b"%d/%d" % (self.calls, block)).digest()
            block += 1
        return out[:n]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def rand() -> FakeRandom:
    return FakeRandom()


@pytest.fixture(scope="module")
def rsa_key():
    return generate_key("rsa", 1024)


@pytest.fixture(scope="module")
def dsa_key():
    return generate_key("dsa", 1024)
