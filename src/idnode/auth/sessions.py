"""Sessions: authenticate once, then send many requests (bulk clients, REST sessions).

One table serves both ways in:

* the native protocol (RFC 3652 section 3.8; HSJ ``SessionManager``): the client sets up a
  session and later messages carry its ``session_id``, a 4-byte envelope field. The id is
  random (31 bits, nonzero), but 31 bits are no secret: a keyed session (``Session.keys``,
  ``idnode.auth.session_suites``) trusts a message only when its HS_MAC verifies under the
  session key (``transport.wire_sessions``), and the identity-only mode 0 is bound to the
  client's address (``transport.wire_auth``);
* the REST API: ``POST /api/sessions`` opens an anonymous session with a server nonce
  (``open_rest``), ``PUT /api/sessions/this`` binds it to an identity once the answer
  verifies (``idnode.auth.rest``), and later requests send only the session's ``token`` --
  192 random bits, which is the bearer credential over TLS.

This table lives in one process's memory. A serving node keeps its REST sessions in the
store instead (``auth.rest_sessions.StoredSessions``), so every worker of
``idnode serve --workers N`` honours them; the REST methods here (``open_rest``,
``by_token``) serve ``auth.rest.authenticate_rest_session`` in one process. The native
protocol's sessions stay here, per worker: their key state changes with every message.

A session ends when ``terminate`` is called, after ``timeout`` seconds without use (a
native session may ask for less: ``Session.timeout``), or
``max_lifetime`` seconds after it began (HSJ's default session limit, 24 hours). At most
``max_sessions`` live at once; when full, expired sessions are purged, then the least
recently used *anonymous* one goes, and only if every session is authenticated is a new
one refused (``SessionFailed``): a flood of anonymous REST sessions cannot evict logged-in
users.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from idnode.auth.headers import parse_basic_authorization, parse_handle_authorization
from idnode.auth.identity import Identity
from idnode.auth.session_suites import SessionKeys
from idnode.errors import SessionFailed, SessionTimeout

DEFAULT_TIMEOUT = 3600.0
DEFAULT_MAX_LIFETIME = 24 * 3600.0
REST_NONCE_SIZE = 16
TOKEN_BYTES = 24


@dataclass(slots=True)
class Session:
    """One session. ``identity`` is None until authenticated; ``nonce`` is the REST nonce
    still waiting for its answer; ``keys`` the key state of a keyed native session;
    ``timeout`` this session's own idle limit (None: the table's)."""

    id: int
    token: str
    created: float
    last_used: float
    identity: Identity | None = None
    nonce: bytes | None = None
    keys: SessionKeys | None = None
    timeout: float | None = None

    @property
    def authenticated(self) -> bool:
        return self.identity is not None


def check_session_limits(timeout: float, max_sessions: int, max_lifetime: float) -> None:
    """The bounds every session table (in memory or in the store) refuses to start without."""
    if timeout <= 0 or max_lifetime <= 0:
        raise ValueError("timeouts must be positive")
    if max_sessions < 1:
        raise ValueError("max_sessions must be at least 1")


class SessionTable:
    """Live sessions by id (and by REST token); time and randomness passed in."""

    def __init__(
        self,
        clock: Callable[[], float],
        random_bytes: Callable[[int], bytes],
        timeout: float = DEFAULT_TIMEOUT,
        max_sessions: int = 10000,
        max_lifetime: float = DEFAULT_MAX_LIFETIME,
    ) -> None:
        check_session_limits(timeout, max_sessions, max_lifetime)
        self._clock = clock
        self._random = random_bytes
        self.timeout = float(timeout)
        self.max_lifetime = float(max_lifetime)
        self.max_sessions = max_sessions
        self._by_id: dict[int, Session] = {}  # least recently used first
        self._by_token: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    # -- opening -------------------------------------------------------------------------
    def create(
        self,
        identity: Identity | None = None,
        *,
        nonce: bytes | None = None,
        keys: SessionKeys | None = None,
        timeout: float | None = None,
    ) -> int:
        """A new session (authenticated as ``identity`` if given); returns its id.
        ``timeout``: idle seconds this session may ask for, capped at the table's."""
        now = self._clock()
        self._make_room(now)
        own = None if timeout is None or timeout <= 0 else min(float(timeout), self.timeout)
        session = Session(self._new_id(), self._new_token(), now, now, identity, nonce, keys, own)
        self._by_id[session.id] = session
        self._by_token[session.token] = session
        return session.id

    def open_rest(self) -> Session:
        """``POST /api/sessions``: an anonymous session holding a fresh server nonce.

        Answer ``{"sessionId": session.token, "nonce": base64(session.nonce)}``.
        """
        nonce = bytes(self._random(REST_NONCE_SIZE))
        session_id = self.create(nonce=nonce)
        return self._by_id[session_id]

    # -- lookups -------------------------------------------------------------------------
    def session(self, session_id: int) -> Session | None:
        """The live session (its use refreshes the idle timer), or None."""
        return self._live(self._by_id.get(session_id))

    def by_token(self, token: str) -> Session | None:
        """The live session for a REST ``sessionId`` string, or None."""
        if not isinstance(token, str):
            return None
        return self._live(self._by_token.get(token))

    def exists(self, session_id: int) -> bool:
        """Whether ``session_id`` names a session (live or not yet purged), without using it."""
        return session_id in self._by_id

    def get(self, session_id: int) -> Identity | None:
        """The identity of a live, authenticated session; None otherwise."""
        session = self.session(session_id)
        return session.identity if session is not None else None

    # -- changes -------------------------------------------------------------------------
    def authenticate(self, session_id: int, identity: Identity) -> None:
        """Bind a live session to ``identity``; its REST nonce is spent."""
        session = self.session(session_id)
        if session is None:
            raise SessionTimeout(f"session {session_id} expired or unknown")
        session.identity = identity
        session.nonce = None

    def terminate(self, session_id: int) -> bool:
        """End a session; False if there was none."""
        session = self._by_id.pop(session_id, None)
        if session is None:
            return False
        self._by_token.pop(session.token, None)
        return True

    def purge(self) -> int:
        """Drop every expired session now; returns how many went."""
        now = self._clock()
        dead = [s.id for s in self._by_id.values() if self._expired(s, now)]
        for session_id in dead:
            self.terminate(session_id)
        return len(dead)

    # -- internals -----------------------------------------------------------------------
    def _expired(self, session: Session, now: float) -> bool:
        timeout = session.timeout or self.timeout
        return not (
            session.created <= now < session.created + self.max_lifetime
            and now < session.last_used + timeout
        )

    def _live(self, session: Session | None) -> Session | None:
        if session is None:
            return None
        now = self._clock()
        if self._expired(session, now):
            self.terminate(session.id)
            return None
        session.last_used = max(session.last_used, now)
        # keep least-recently-used order for eviction
        del self._by_id[session.id]
        self._by_id[session.id] = session
        return session

    def _make_room(self, now: float) -> None:
        """Room for one more: the least recently used expired sessions go first (they are at
        the front, so a full table costs a few look-ups, not a scan of every session), then
        the least recently used anonymous one."""
        if len(self._by_id) < self.max_sessions:
            return
        while self._by_id:
            session = next(iter(self._by_id.values()))
            if not self._expired(session, now):
                break
            self.terminate(session.id)
        if len(self._by_id) < self.max_sessions:
            return
        for session in self._by_id.values():
            if session.identity is None:
                self.terminate(session.id)
                return
        raise SessionFailed("too many sessions; try again later")

    def _new_id(self) -> int:
        for _ in range(64):
            candidate = int.from_bytes(self._random(4), "big") & 0x7FFFFFFF
            if candidate and candidate not in self._by_id:
                return candidate
        raise SessionFailed("cannot allocate a session id")

    def _new_token(self) -> str:
        for _ in range(64):
            token = base64.urlsafe_b64encode(self._random(TOKEN_BYTES)).decode("ascii")
            if token not in self._by_token:
                return token
        raise SessionFailed("cannot allocate a session token")


__all__ = [
    "Session",
    "SessionTable",
    "parse_basic_authorization",
    "parse_handle_authorization",
]
