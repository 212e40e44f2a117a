"""REST sessions in the store (``auth.rest_sessions.StoredSessions``), on SQLite and on a
real PostgreSQL: two tables over one store are two workers of one node."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from idnode.auth.identity import Identity
from idnode.auth.rest_sessions import StoredSessions, token_digest
from idnode.errors import SessionFailed
from idnode.runtime import SeededRandom
from idnode.store.base import Store
from tests.store.conftest import FakeClock

ALICE = Identity("0.NA/20.500.1", 300)
BOB = Identity("20.500.1/bob", 301)


def workers(store: Store, clock: FakeClock, n: int = 2, **kwargs) -> list[StoredSessions]:
    return [
        StoredSessions(store, clock, SeededRandom(seed), timeout=100, **kwargs)
        for seed in range(1, n + 1)
    ]


async def test_a_session_opened_by_one_worker_is_honoured_and_ended_by_another(
    store: Store, clock: FakeClock
) -> None:
    a, b = workers(store, clock)
    opened = await a.open_rest()
    assert opened.nonce is not None and len(opened.token) == 32
    seen = await b.by_token(opened.token)
    assert seen is not None and seen.nonce == opened.nonce and not seen.authenticated
    await b.authenticate(seen, ALICE)
    again = await a.by_token(opened.token)
    assert again is not None and again.identity == ALICE and again.nonce is None
    assert await a.terminate(again)
    assert await b.by_token(opened.token) is None
    assert not await b.terminate(again)
    assert await a.by_token("no such session") is None


async def test_only_a_digest_of_the_session_id_is_stored(store: Store, clock: FakeClock) -> None:
    (a,) = workers(store, clock, 1)
    opened = await a.open_rest()
    await a.authenticate(opened, ALICE)
    rows = await store.query("SELECT * FROM {s}.rest_sessions")
    assert len(rows) == 1
    assert rows[0]["digest"] == hashlib.sha256(opened.token.encode()).hexdigest()
    assert rows[0]["digest"] == token_digest(opened.token)
    assert opened.token not in repr(rows)
    assert rows[0]["identity"] == str(ALICE)


async def test_idle_timeout_and_lifetime_hold_for_every_worker(
    store: Store, clock: FakeClock
) -> None:
    a, b = workers(store, clock, max_lifetime=250)
    opened = await a.open_rest()
    clock.now += 99  # used on b just before the idle timeout: the timer restarts for all
    assert await b.by_token(opened.token) is not None
    clock.now += 99
    assert await a.by_token(opened.token) is not None
    clock.now += 51  # 249 s old: still within its lifetime
    assert await b.by_token(opened.token) is not None
    clock.now += 1  # 250 s: its lifetime is over, however busy
    assert await a.by_token(opened.token) is None
    assert await b.by_token(opened.token) is None

    idle = await a.open_rest()
    clock.now += 100
    assert await b.by_token(idle.token) is None
    await a.purge()
    assert await a.count() == 0


async def test_the_idle_timer_is_written_only_when_it_moved_enough(
    store: Store, clock: FakeClock
) -> None:
    (a,) = workers(store, clock, 1)
    opened = await a.open_rest()
    stored = "SELECT last_used FROM {s}.rest_sessions"
    clock.now += 1  # less than timeout / 60 (1.67 s): no write
    assert (await a.by_token(opened.token)).last_used == opened.created
    assert await store.query_value(stored) == opened.created
    clock.now += 1
    assert (await a.by_token(opened.token)).last_used == clock.now
    assert await store.query_value(stored) == clock.now


async def test_a_nonce_is_spent_once_across_workers(store: Store, clock: FakeClock) -> None:
    a, b = workers(store, clock)
    opened = await a.open_rest()
    on_a, on_b = await a.by_token(opened.token), await b.by_token(opened.token)
    assert on_a.nonce == on_b.nonce == opened.nonce
    assert await a.spend_nonce(on_a, opened.nonce)  # a verifies an answer over it ...
    assert not await b.spend_nonce(on_b, opened.nonce)  # ... so b cannot accept it too
    assert on_a.nonce != opened.nonce
    assert (await b.by_token(opened.token)).nonce == on_a.nonce


async def test_a_challenge_becomes_one_session_and_cannot_come_back_once_ended(
    store: Store, clock: FakeClock
) -> None:
    a, b = workers(store, clock)
    token, nonce = "~challenge", b"n" * 16
    made = await a.adopt(token, nonce)
    assert made is not None and made.nonce == nonce
    same = await b.adopt(token, nonce)  # the other worker finds it, not a second one
    assert same is not None and same.nonce == nonce
    assert await store.query_value("SELECT count(*) FROM {s}.rest_sessions") == 1
    await b.authenticate(same, BOB)
    assert (await a.by_token(token)).identity == BOB
    assert await a.terminate(made, keep_ended=True)
    assert await b.by_token(token) is None
    assert await b.adopt(token, nonce) is None  # the same challenge does not reopen it
    clock.now += 100  # idle as long as a session: the ended row goes too
    await b.purge()
    assert await b.count() == 0


async def test_a_full_table_evicts_anonymous_sessions_never_authenticated_ones(
    store: Store, clock: FakeClock
) -> None:
    a, b = workers(store, clock, max_sessions=3)
    first, second = await a.open_rest(), await b.open_rest()
    await a.authenticate(first, ALICE)
    await b.authenticate(second, BOB)
    clock.now += 1
    anonymous = await a.open_rest()
    clock.now += 1
    newest = await b.open_rest()  # full: the anonymous one goes
    assert await a.by_token(anonymous.token) is None
    assert await a.by_token(first.token) is not None
    assert await a.by_token(second.token) is not None
    await a.authenticate(newest, ALICE)
    with pytest.raises(SessionFailed):
        await b.open_rest()  # every session is authenticated: refused, none evicted
    assert await a.count() == 3


async def test_sessions_survive_a_restart(
    make_store: Callable[[], Store], clock: FakeClock
) -> None:
    store = make_store()
    await store.open()
    try:
        (a,) = workers(store, clock, 1)
        opened = await a.open_rest()
        await a.authenticate(opened, ALICE)
    finally:
        await store.close()
    store = make_store()
    await store.open()
    try:
        (b,) = workers(store, clock, 1)
        assert (await b.by_token(opened.token)).identity == ALICE
    finally:
        await store.close()
