"""The Handle.Net REST API's sessions, kept in the node's store so every worker honours them.

Why in the store: ``idnode serve --workers N`` runs N processes behind one port
(SO_REUSEPORT), and the kernel hands each new connection to any of them. Sessions kept in
one worker's memory (``auth.sessions.SessionTable``) were unknown to the others: a client
that opened and authenticated a session and then sent its next request on a new connection
got 401 whenever that connection landed elsewhere (``bench/writes.py --paths rest-new``:
789 of 1,607 PUTs refused with two workers). The architecture's rule is that everything a
node knows is in its store (``rest_sessions``, migration 9), so a session opened on one
worker is honoured by every worker and every host on the same database, and a DELETE or an
expiry ends it for all of them at once.

What is stored: the SHA-256 digest of the session id, never the id (it is the bearer
credential: whoever reads the database cannot use a session), the identity once
authenticated, the challenge nonce waiting for its answer (sent in clear anyway), and the
times. Writes are ``logged=False`` (no log row, no announcement, no response cache
cleared), like the recursive cache's.

Costs, and the choices that bound them:

* every request naming a session reads its row (one primary-key read, inline on SQLite:
  ``Store.query_point``); there is no per-worker cache, so a revocation or an expiry holds
  on every worker at the next request;
* the idle timer is written only when it moved by ``timeout / TOUCH_SHARE`` or more (a
  minute for the default hour), not on every request: an idle session may so live up to
  that much longer than ``timeout``;
* a challenge nonce is spent with a guarded update (``WHERE nonce = <the one answered>``),
  so two workers given the same answer at once authenticate at most one request with it;
* expired rows go in batches, every ``TRIM_EVERY`` sessions opened by a worker (fewer for
  a small table); when the table holds about ``max_sessions`` (each worker may add a
  batch), the least recently used *anonymous* sessions go, and only if every session is
  authenticated is a new one refused (``SessionFailed``), as the in-memory table did.

Time is the node's runtime clock, randomness its random source (``idnode.runtime``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from idnode.auth.identity import Identity
from idnode.auth.sessions import (
    DEFAULT_MAX_LIFETIME,
    DEFAULT_TIMEOUT,
    REST_NONCE_SIZE,
    check_session_limits,
)
from idnode.errors import SessionFailed
from idnode.store.effects import EffectRefused, Effects, Statement

if TYPE_CHECKING:
    from idnode.store.base import Store

TOKEN_BYTES = 24  # 192 random bits: the session id is the bearer credential
TOUCH_SHARE = 60  # the idle timer is written when it moved by timeout / TOUCH_SHARE
TRIM_EVERY = 64  # sessions opened by one worker between two trims
ACTION = "sessions"

SELECT = "SELECT identity, nonce, created, last_used, ended FROM {s}.rest_sessions WHERE digest = ?"
INSERT = (
    "INSERT INTO {s}.rest_sessions (digest, identity, nonce, created, last_used)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING"
)
TOUCH = "UPDATE {s}.rest_sessions SET last_used = ? WHERE digest = ? AND last_used < ?"
AUTHENTICATE = (
    "UPDATE {s}.rest_sessions SET identity = ?, nonce = NULL WHERE digest = ? AND ended IS NULL"
)
SPEND_NONCE = "UPDATE {s}.rest_sessions SET nonce = ? WHERE digest = ? AND nonce = ?"
SET_NONCE = "UPDATE {s}.rest_sessions SET nonce = ? WHERE digest = ? AND nonce IS NULL"
DELETE = "DELETE FROM {s}.rest_sessions WHERE digest = ?"
# a session made from a 401's challenge: kept, ended, so the challenge cannot reopen it
END = (
    "UPDATE {s}.rest_sessions SET identity = NULL, nonce = NULL, ended = ?, last_used = ?"
    " WHERE digest = ? AND ended IS NULL"
)
EXPIRE = "DELETE FROM {s}.rest_sessions WHERE last_used <= ? OR created <= ?"
COUNT = "SELECT count(*) AS n FROM {s}.rest_sessions"
EVICT_ANONYMOUS = (
    "DELETE FROM {s}.rest_sessions WHERE digest IN (SELECT digest FROM {s}.rest_sessions"
    " WHERE identity IS NULL AND ended IS NULL ORDER BY last_used LIMIT ?)"
)


def token_digest(token: str) -> str:
    """What the store keeps of a session id: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class RestSession:
    """One REST session as a request sees it. ``token`` is the ``sessionId`` the client
    sent (the store holds only its digest); ``identity`` is None until authenticated;
    ``nonce`` the challenge waiting for its answer."""

    token: str
    created: float
    last_used: float
    identity: Identity | None = None
    nonce: bytes | None = None

    @property
    def authenticated(self) -> bool:
        return self.identity is not None

    @property
    def digest(self) -> str:
        return token_digest(self.token)


class StoredSessions:
    """REST sessions in the store (``rest_sessions``), shared by every worker of a node."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        random_bytes: Callable[[int], bytes],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_sessions: int = 10000,
        max_lifetime: float = DEFAULT_MAX_LIFETIME,
    ) -> None:
        check_session_limits(timeout, max_sessions, max_lifetime)
        self.store = store
        self._clock = clock
        self._random = random_bytes
        self.timeout = float(timeout)
        self.max_lifetime = float(max_lifetime)
        self.max_sessions = max_sessions
        # a trim every so many sessions opened here, and room left for as many: the bound
        # holds within (workers - 1) * that many
        self._trim_every = max(1, min(TRIM_EVERY, max_sessions // 8))
        self._opened = 0  # sessions this worker opened since its last trim
        self._full = False  # the last trim found every session authenticated

    # -- opening -------------------------------------------------------------------------
    async def open_rest(self, identity: Identity | None = None) -> RestSession:
        """``POST /api/sessions``: a new session holding a fresh server nonce.

        Answer ``{"sessionId": session.token, "nonce": base64(session.nonce)}``.
        """
        await self._make_room()
        nonce = bytes(self._random(REST_NONCE_SIZE))
        for _ in range(8):
            token = base64.urlsafe_b64encode(self._random(TOKEN_BYTES)).decode("ascii")
            session = await self._insert(token, nonce, identity)
            if session is not None:
                return session
        raise SessionFailed("cannot allocate a session id")

    async def adopt(self, token: str, nonce: bytes) -> RestSession | None:
        """The session named by a 401's challenge (``token``, carrying ``nonce``) that a
        client is answering: made now, or found if this or another worker made it before.
        None if it was made and has ended (deleted or expired)."""
        found = await self.by_token(token)
        if found is not None:
            return found
        await self._make_room()
        await self._insert(token, nonce, None)  # another worker may have won: then found
        return await self.by_token(token)

    # -- lookups -------------------------------------------------------------------------
    async def by_token(self, token: str) -> RestSession | None:
        """The live session a ``sessionId`` names, or None; its use refreshes the idle
        timer (written when it moved by ``timeout / TOUCH_SHARE``)."""
        if not isinstance(token, str) or not token or len(token) > 200:
            return None
        digest = token_digest(token)
        row = await self.store.query_point(SELECT, digest)
        if row is None or row["ended"] is not None:
            return None
        created, last_used = float(row["created"]), float(row["last_used"])
        now = self._clock()
        if not (created <= now < created + self.max_lifetime and now < last_used + self.timeout):
            return None  # expired: the next trim removes it
        if now - last_used >= self.timeout / TOUCH_SHARE:
            await self._run(TOUCH, now, digest, now)
            last_used = now
        identity = None if row["identity"] is None else Identity.parse(row["identity"])
        nonce = None if row["nonce"] is None else bytes(row["nonce"])
        return RestSession(token, created, last_used, identity, nonce)

    async def count(self) -> int:
        """Rows in the table (live, expired not yet trimmed, ended challenges)."""
        return int(await self.store.query_value(COUNT) or 0)

    # -- changes -------------------------------------------------------------------------
    async def authenticate(self, session: RestSession, identity: Identity) -> None:
        """Bind ``session`` to ``identity``; its nonce is spent."""
        if not await self._run(AUTHENTICATE, str(identity), session.digest):
            raise SessionFailed("the session ended")
        session.identity, session.nonce = identity, None

    async def spend_nonce(self, session: RestSession, answered: bytes) -> bool:
        """Replace the nonce ``answered`` by a fresh one, before its answer is checked: True
        if it was still this session's nonce, False if a request (on any worker) spent it
        first. Single use, whatever the answer turns out to be."""
        fresh = bytes(self._random(REST_NONCE_SIZE))
        if not await self._run(SPEND_NONCE, fresh, session.digest, answered):
            return False
        session.nonce = fresh
        return True

    async def ensure_nonce(self, session: RestSession) -> bytes:
        """A nonce for ``session``'s next challenge: its own, or a fresh one stored now."""
        if session.nonce is None:
            fresh = bytes(self._random(REST_NONCE_SIZE))
            if await self._run(SET_NONCE, fresh, session.digest):
                session.nonce = fresh
            else:  # another worker set one meanwhile
                row = await self.store.query_one(SELECT, session.digest)
                session.nonce = bytes(row["nonce"]) if row and row["nonce"] else fresh
        return session.nonce

    async def terminate(self, session: RestSession, *, keep_ended: bool = False) -> bool:
        """End ``session`` for every worker; False if there was none. ``keep_ended``: keep
        an ended row until it expires (a session made from a 401's challenge, which must
        not be made again from the same challenge)."""
        if keep_ended:
            now = self._clock()
            return await self._run(END, now, now, session.digest)
        return await self._run(DELETE, session.digest)

    async def purge(self) -> None:
        """Drop every expired session now (ended challenges once idle as long)."""
        now = self._clock()
        await self._run(EXPIRE, now - self.timeout, now - self.max_lifetime, one=False)

    # -- internals -----------------------------------------------------------------------
    async def _insert(
        self, token: str, nonce: bytes | None, identity: Identity | None
    ) -> RestSession | None:
        now = self._clock()
        who = None if identity is None else str(identity)
        made = await self._run(INSERT, token_digest(token), who, nonce, now, now)
        self._opened += 1
        return RestSession(token, now, now, identity, nonce) if made else None

    async def _make_room(self) -> None:
        """Every ``TRIM_EVERY`` sessions (and while full): expired rows go, then, beyond
        ``max_sessions``, the least recently used anonymous ones; refuse if none was."""
        if 0 < self._opened < self._trim_every and not self._full:
            return
        self._opened = 0
        await self.purge()
        surplus = await self.count() - self.max_sessions + self._trim_every
        if surplus > 0:
            await self._run(EVICT_ANONYMOUS, surplus, one=False)
        self._full = await self.count() >= self.max_sessions
        if self._full:
            raise SessionFailed("too many sessions; try again later")

    async def _run(self, sql: str, *args: Any, one: bool = True) -> bool:
        """One statement in its own transaction, unlogged. ``one``: it must touch exactly
        one row, and the answer says whether it did (a lost race is False, not an error)."""
        statement = Statement(sql, args, expect=1 if one else None)
        effects = Effects(statements=(statement,), action=ACTION, target="rest session")
        try:
            await self.store.apply(effects, logged=False)
        except EffectRefused:
            return False
        return True
