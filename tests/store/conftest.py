"""Fixtures that run the engine-neutral suite against every store engine.

To add an engine, write a factory ``(tmp_path, clock, **options) -> Store`` and add one line to
``ENGINES``; every test in ``test_store.py`` then runs against it too. An engine whose storage
lives outside ``tmp_path`` also adds a line to ``CLEANUPS`` (run after each test).

PostgreSQL: the server at ``IDNODE_TEST_PG_DSN`` (default: trust auth on 127.0.0.1, database
``test``); each test gets its own schema, dropped afterwards. A server that is not running
FAILS the tests (CI has one): it must never look like a pass.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from idnode.store.base import Store
from idnode.store.postgres import PostgresStore
from idnode.store.sqlite import SQLiteStore
from idnode.wire.public_answer import ENCODER

PG_DSN = os.environ.get("IDNODE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


class FakeClock:
    """A settable clock, so transaction-log timestamps are predictable."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _sqlite(tmp_path: Path, clock: FakeClock, **options: Any) -> Store:
    return SQLiteStore(str(tmp_path / "node.db"), clock=clock, **options)


def pg_schema_for(tmp_path: Path) -> str:
    """One schema per test, the same on every call within it (reopening finds the data)."""
    return "t_" + hashlib.blake2b(str(tmp_path).encode(), digest_size=8).hexdigest()


def _postgres(tmp_path: Path, clock: FakeClock, **options: Any) -> Store:
    schema = pg_schema_for(tmp_path)
    return PostgresStore(PG_DSN, clock=clock, schema=schema, max_size=4, **options)


async def pg_connect() -> asyncpg.Connection:
    """A direct connection to the test server, or a test failure saying how to start it."""
    try:
        return await asyncpg.connect(PG_DSN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_DSN} ({type(exc).__name__}: {exc}).\n"
            f"The store suite needs it. Start it with: {PG_START}",
            pytrace=False,
        )


async def drop_pg_schema(tmp_path: Path) -> None:
    conn = await pg_connect()
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {pg_schema_for(tmp_path)} CASCADE")
    finally:
        await conn.close()


# engine name -> factory making a new, unopened store on the same storage each call (keyword
# options go to the engine's constructor)
ENGINES: dict[str, Callable[..., Store]] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}
# engine name -> async check before the test (fail early and clearly) and cleanup after it
SETUPS: dict[str, Callable[[Path], Awaitable[None]]] = {"postgres": drop_pg_schema}
CLEANUPS: dict[str, Callable[[Path], Awaitable[None]]] = {"postgres": drop_pg_schema}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=list(ENGINES))
async def make_store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Callable[[], Store]]:
    """A factory of unopened stores sharing one storage: call it again to test reopening."""
    engine = request.param
    if engine in SETUPS:
        await SETUPS[engine](tmp_path)
    try:
        yield lambda **options: ENGINES[engine](tmp_path, clock, **options)
    finally:
        if engine in CLEANUPS:
            await CLEANUPS[engine](tmp_path)


@pytest.fixture
async def answering_store(make_store: Callable[..., Store]) -> AsyncIterator[Store]:
    """The engine's store keeping each record's public answer (as ``idnode serve`` opens it)."""
    s = make_store(answers=ENCODER)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    s = make_store()
    await s.open()
    try:
        yield s
    finally:
        await s.close()
