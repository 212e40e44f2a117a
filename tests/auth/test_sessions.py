"""SessionTable: ids, tokens, expiry, bounds."""

from __future__ import annotations

import pytest

from idnode.auth.identity import Identity
from idnode.auth.sessions import SessionTable
from idnode.errors import SessionFailed, SessionTimeout

ALICE = Identity("0.NA/20.500", 300)
BOB = Identity("20.500/bob", 301)


def test_create_get_terminate(clock, rand):
    table = SessionTable(clock, rand)
    sid = table.create(ALICE)
    assert 0 < sid < 1 << 31
    assert table.get(sid) == ALICE
    assert table.terminate(sid) is True
    assert table.get(sid) is None
    assert table.terminate(sid) is False
    assert len(table) == 0


def test_ids_and_tokens_are_distinct_and_random(clock, rand):
    table = SessionTable(clock, rand)
    ids = {table.create(ALICE) for _ in range(50)}
    assert len(ids) == 50
    tokens = {table.session(i).token for i in ids}
    assert len(tokens) == 50
    assert all(len(t) == 32 for t in tokens)


def test_zero_and_colliding_ids_are_skipped(clock):
    draws = iter([b"\x00\x00\x00\x00", b"\x80\x00\x00\x00", b"\x00\x00\x00\x05"] + [b"t" * 24])
    table = SessionTable(clock, lambda n: next(draws) if n == 4 else b"t" * n)
    # 0 and 0x80000000 (which masks to 0) are skipped
    assert table.create(ALICE) == 5


def test_unknown_id(clock, rand):
    assert SessionTable(clock, rand).get(12345) is None


def test_idle_timeout_refreshed_by_use(clock, rand):
    table = SessionTable(clock, rand, timeout=100)
    sid = table.create(ALICE)
    for _ in range(5):
        clock.now += 99
        assert table.get(sid) == ALICE
    clock.now += 100
    assert table.get(sid) is None
    assert len(table) == 0


def test_max_lifetime(clock, rand):
    table = SessionTable(clock, rand, timeout=100, max_lifetime=250)
    sid = table.create(ALICE)
    clock.now += 99
    table.get(sid)
    clock.now += 99
    table.get(sid)
    clock.now += 99  # idle 99 s only, but 297 s old
    assert table.get(sid) is None


def test_anonymous_session_has_no_identity(clock, rand):
    table = SessionTable(clock, rand)
    session = table.open_rest()
    assert session.nonce is not None and len(session.nonce) == 16
    assert not session.authenticated
    assert table.get(session.id) is None
    assert table.by_token(session.token) is session
    table.authenticate(session.id, BOB)
    assert table.get(session.id) == BOB
    assert session.nonce is None  # spent


def test_authenticate_expired_session(clock, rand):
    table = SessionTable(clock, rand, timeout=10)
    session = table.open_rest()
    clock.now += 10
    with pytest.raises(SessionTimeout):
        table.authenticate(session.id, ALICE)
    assert table.by_token(session.token) is None


def test_by_token_rejects_unknown(clock, rand):
    table = SessionTable(clock, rand)
    table.open_rest()
    assert table.by_token("nope") is None
    assert table.by_token(None) is None  # type: ignore[arg-type]


def test_full_table_evicts_anonymous_first(clock, rand):
    table = SessionTable(clock, rand, max_sessions=3)
    a = table.create(ALICE)
    anon = table.open_rest()
    b = table.create(BOB)
    c = table.create(ALICE)  # full: the anonymous one goes
    assert table.session(anon.id) is None
    assert {table.get(x) for x in (a, b, c)} == {ALICE, BOB}
    with pytest.raises(SessionFailed):
        table.create(BOB)  # only authenticated sessions left: refuse, do not evict


def test_full_table_purges_expired_first(clock, rand):
    table = SessionTable(clock, rand, timeout=10, max_sessions=2)
    table.create(ALICE)
    table.create(BOB)
    clock.now += 11
    sid = table.create(ALICE)
    assert table.get(sid) == ALICE and len(table) == 1


def test_purge(clock, rand):
    table = SessionTable(clock, rand, timeout=10)
    table.create(ALICE)
    table.create(BOB)
    clock.now += 10
    assert table.purge() == 2


@pytest.mark.parametrize("kwargs", [{"timeout": 0}, {"max_lifetime": -1}, {"max_sessions": 0}])
def test_bad_parameters(clock, rand, kwargs):
    with pytest.raises(ValueError):
        SessionTable(clock, rand, **kwargs)
