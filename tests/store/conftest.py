"""Fixtures that run the engine-neutral suite against every store engine.

To add an engine, write a factory ``(tmp_path, clock) -> Store`` and add one line to
``ENGINES``; every test in ``test_store.py`` then runs against it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from idnode.store.base import Store
from idnode.store.sqlite import SQLiteStore


class FakeClock:
    """A settable clock, so transaction-log timestamps are predictable."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _sqlite(tmp_path: Path, clock: FakeClock) -> Store:
    return SQLiteStore(str(tmp_path / "node.db"), clock=clock)


# engine name -> factory making a new, unopened store on the same storage each call
ENGINES: dict[str, Callable[[Path, FakeClock], Store]] = {
    "sqlite": _sqlite,
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=list(ENGINES))
def make_store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock):
    """A factory of unopened stores sharing one storage: call it again to test reopening."""
    return lambda: ENGINES[request.param](tmp_path, clock)


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    s = make_store()
    await s.open()
    try:
        yield s
    finally:
        await s.close()
