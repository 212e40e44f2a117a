"""Pending challenges: the nonces a server has sent and not yet seen answered.

An administrative request without credentials gets a 402 challenge: a fresh nonce plus the
digest of the request (RFC 3652 section 3.5). The client answers with a MAC or signature over
nonce || digest, and the server must then know which nonce it issued *for that request*. The
book keeps that, under a key the transport chooses -- HSJ files pending challenges by the
session id it puts in the challenge's envelope (the client copies it into its answer), so
``(session_id, peer)`` or ``(session_id, request_id, peer)`` are natural keys.

Rules that make a captured answer useless:

* single use: ``take`` removes the entry, so a replayed answer finds nothing;
* expiry: an entry older than ``ttl`` seconds is refused with ``AuthenTimeout`` (code 405);
* bounded memory: at most ``max_pending`` entries; expired ones are purged as new ones come,
  and when the book is still full the oldest is dropped (its client gets 405 and retries).

Time and randomness are passed in (``clock``, ``random_bytes``) so tests are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

from idnode.errors import AuthenTimeout
from idnode.wire.bodies import RequestDigest

NONCE_SIZE = 16  # HSJ Common.CHALLENGE_NONCE_SIZE


@dataclass(frozen=True, slots=True)
class PendingChallenge:
    """What was asked: the nonce, the digest of the challenged request, and when.

    ``request`` is whatever the caller stored to carry the original request over to the
    answer (HSJ re-runs the original request once the answer verifies).
    """

    nonce: bytes
    request_digest: RequestDigest | bytes
    issued_at: float
    request: object = None

    @property
    def digest_bytes(self) -> bytes:
        """The digest as it enters the signed data: bare digest bytes, no algorithm id."""
        d = self.request_digest
        return d.digest if isinstance(d, RequestDigest) else bytes(d)


class ChallengeBook:
    """Issued-but-unanswered challenges, keyed by whatever identifies the pending request."""

    def __init__(
        self,
        clock: Callable[[], float],
        random_bytes: Callable[[int], bytes],
        ttl: float = 60.0,
        max_pending: int = 10000,
        nonce_size: int = NONCE_SIZE,
    ) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        if max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        if nonce_size < 8:
            raise ValueError("a nonce needs at least 8 bytes")
        self._clock = clock
        self._random = random_bytes
        self.ttl = float(ttl)
        self.max_pending = max_pending
        self.nonce_size = nonce_size
        # insertion order == issue order, so the oldest entries are always at the front
        self._pending: dict[Hashable, PendingChallenge] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def issue(
        self, key: Hashable, request_digest: RequestDigest | bytes, *, request: object = None
    ) -> bytes:
        """A nonce for the request identified by ``key``; remember it until answered.

        Issuing again for a key whose challenge is still pending *for the same request
        digest* returns the same nonce: a retransmitted UDP request must not invalidate the
        answer the client may already be computing (HSJ re-sends its earlier challenge too).
        A different digest replaces the old challenge.
        """
        now = self._clock()
        self._purge(now)
        old = self._pending.get(key)
        if old is not None and not self._expired(old, now) and _same(old, request_digest):
            return old.nonce  # left in place, so the book stays in issue order
        self._pending.pop(key, None)
        while len(self._pending) >= self.max_pending:
            del self._pending[next(iter(self._pending))]
        nonce = bytes(self._random(self.nonce_size))
        if len(nonce) != self.nonce_size:
            raise ValueError("random_bytes returned the wrong number of bytes")
        self._pending[key] = PendingChallenge(nonce, request_digest, now, request)
        return nonce

    def peek(self, key: Hashable) -> PendingChallenge | None:
        """The pending challenge for ``key`` without consuming it (None if none or expired)."""
        entry = self._pending.get(key)
        if entry is None or self._expired(entry, self._clock()):
            return None
        return entry

    def take(self, key: Hashable) -> PendingChallenge | None:
        """Remove and return the challenge for ``key``.

        None when there is none -- never issued, or already taken (a replay). Raises
        ``AuthenTimeout`` when it had expired; the entry is gone either way.
        """
        entry = self._pending.pop(key, None)
        if entry is None:
            return None
        now = self._clock()
        if self._expired(entry, now):
            self._purge(now)
            raise AuthenTimeout(f"challenge expired after {self.ttl:g} s; authenticate again")
        return entry

    def discard(self, key: Hashable) -> None:
        self._pending.pop(key, None)

    def purge(self) -> int:
        """Drop every expired entry now; returns how many went."""
        return self._purge(self._clock())

    def _expired(self, entry: PendingChallenge, now: float) -> bool:
        # a clock that jumps backwards must not make an entry live for ever
        return not (entry.issued_at <= now < entry.issued_at + self.ttl)

    def _purge(self, now: float) -> int:
        dropped = 0
        while self._pending:
            key = next(iter(self._pending))
            entry = self._pending[key]
            if not self._expired(entry, now):
                break
            del self._pending[key]
            dropped += 1
        return dropped


def _same(entry: PendingChallenge, digest: RequestDigest | bytes) -> bool:
    other = digest.digest if isinstance(digest, RequestDigest) else bytes(digest)
    return entry.digest_bytes == other
