"""ChallengeBook: single-use nonces with expiry and bounded memory."""

from __future__ import annotations

import pytest

from idnode.auth.challenge import ChallengeBook
from idnode.errors import AuthenTimeout
from idnode.wire.bodies import DigestAlgorithm, RequestDigest

DIGEST = RequestDigest(DigestAlgorithm.SHA256, bytes(range(32)))


def test_issue_and_take_once(clock, rand):
    book = ChallengeBook(clock, rand)
    nonce = book.issue((1, 2, "peer"), DIGEST, request="original")
    assert len(nonce) == 16
    pending = book.take((1, 2, "peer"))
    assert pending is not None
    assert pending.nonce == nonce and pending.request_digest == DIGEST
    assert pending.digest_bytes == DIGEST.digest
    assert pending.request == "original" and pending.issued_at == clock.now
    assert book.take((1, 2, "peer")) is None  # a replayed answer finds nothing
    assert len(book) == 0


def test_unknown_key(clock, rand):
    assert ChallengeBook(clock, rand).take("nope") is None


def test_nonces_differ_per_request(clock, rand):
    book = ChallengeBook(clock, rand)
    assert book.issue("a", DIGEST) != book.issue("b", DIGEST)


def test_expired_refused_and_purged(clock, rand):
    book = ChallengeBook(clock, rand, ttl=60)
    book.issue("a", DIGEST)
    clock.now += 59.9
    assert book.peek("a") is not None
    clock.now += 0.1
    assert book.peek("a") is None
    with pytest.raises(AuthenTimeout) as err:
        book.take("a")
    assert err.value.code == 405
    assert book.take("a") is None and len(book) == 0


def test_clock_going_backwards_expires(clock, rand):
    book = ChallengeBook(clock, rand)
    book.issue("a", DIGEST)
    clock.now -= 1
    with pytest.raises(AuthenTimeout):
        book.take("a")


def test_issue_purges_expired(clock, rand):
    book = ChallengeBook(clock, rand, ttl=10)
    for i in range(5):
        book.issue(i, DIGEST)
    clock.now += 11
    book.issue("fresh", DIGEST)
    assert len(book) == 1


def test_retransmitted_request_gets_same_nonce(clock, rand):
    book = ChallengeBook(clock, rand)
    first = book.issue("k", DIGEST)
    assert book.issue("k", DIGEST) == first
    assert book.issue("k", DIGEST.digest) == first  # bare bytes compare the same
    other = RequestDigest(DigestAlgorithm.SHA256, bytes(32))
    second = book.issue("k", other)  # a different request under the key replaces it
    assert second != first
    assert book.take("k").nonce == second
    clock.now += 100
    third = book.issue("k", other)
    assert third != second  # an expired one is not reused


def test_bounded_evicts_oldest(clock, rand):
    book = ChallengeBook(clock, rand, max_pending=3)
    for i in range(5):
        clock.now += 1
        book.issue(i, DIGEST)
    assert len(book) == 3
    assert book.take(0) is None and book.take(1) is None
    assert book.take(4) is not None


def test_purge_and_discard(clock, rand):
    book = ChallengeBook(clock, rand, ttl=5)
    book.issue("a", DIGEST)
    book.discard("a")
    assert book.take("a") is None
    book.issue("b", DIGEST)
    clock.now += 6
    assert book.purge() == 1


@pytest.mark.parametrize("kwargs", [{"ttl": 0}, {"max_pending": 0}, {"nonce_size": 4}])
def test_bad_parameters(clock, rand, kwargs):
    with pytest.raises(ValueError):
        ChallengeBook(clock, rand, **kwargs)


def test_short_randomness_refused(clock):
    book = ChallengeBook(clock, lambda n: b"x")
    with pytest.raises(ValueError):
        book.issue("a", DIGEST)
