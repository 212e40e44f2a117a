"""Console sign-in sessions: a signed cookie, a CSRF token, an idle and an absolute timeout.

A session is the signed-in account's token *hash* (never the token), when it was issued,
when it was last used, and a random CSRF token, in a cookie signed with HMAC-SHA256. The
signing key is derived from the node's server key file, which every worker (and every host
of one node) reads, so a session holds whatever process answers; no session table has to be
shared. Each request re-reads the account by its token hash (``authenticate_hash``), so a
revoked, rotated, disabled or expired token, or a suspended organisation, ends the session
at once, as it ends API access.

* idle timeout (``[console] idle_timeout``): a request after that long is signed out; each
  request renews ``seen`` and so the cookie;
* absolute timeout (``[console] max_age``): signed out that long after sign-in, whatever;
* CSRF: every state-changing request carries the session's CSRF token (a hidden form field,
  or the ``X-CSRF-Token`` header htmx sends), compared in constant time; the cookie is also
  ``SameSite=Strict`` and ``HttpOnly``.

Signing out deletes the cookie; a copy taken before then stays valid until a timeout (the
price of keeping no server-side table), which is why the idle timeout is short.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, replace

import orjson

from idnode.runtime import Clock, Random

COOKIE = "idnode_console"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class ConsoleSession:
    token_hash: str
    issued: int
    seen: int
    csrf: str


def signing_key(server_key_pem: bytes) -> bytes:
    """The cookie key: derived from the server key, so every worker of the node agrees."""
    return hmac.new(server_key_pem, b"idnode console session cookies v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCookies:
    """Issue, renew and check console session cookies."""

    def __init__(
        self, key: bytes, clock: Clock, random: Random, *, idle: int, max_age: int
    ) -> None:
        self.key = key
        self.clock = clock
        self.random = random
        self.idle = idle
        self.max_age = max_age

    def new(self, token_hash: str) -> ConsoleSession:
        now = int(self.clock())
        return ConsoleSession(token_hash, now, now, _b64(self.random(24)))

    def touch(self, session: ConsoleSession) -> ConsoleSession:
        return replace(session, seen=int(self.clock()))

    def dump(self, session: ConsoleSession) -> str:
        payload = _b64(orjson.dumps([session.token_hash, session.issued, session.seen,
                                     session.csrf]))  # fmt: skip
        return payload + "." + _b64(self._mac(payload))

    def load(self, cookie: str | None) -> ConsoleSession | None:
        """The session of a cookie, or None: absent, forged, malformed or timed out."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        try:
            if not hmac.compare_digest(_unb64(mac), self._mac(payload)):
                return None
            token_hash, issued, seen, csrf = orjson.loads(_unb64(payload))
        except (ValueError, TypeError, orjson.JSONDecodeError):
            return None
        if not all(isinstance(v, int) for v in (issued, seen)):
            return None
        now = int(self.clock())
        if now - seen > self.idle or now - issued > self.max_age:
            return None
        return ConsoleSession(str(token_hash), issued, seen, str(csrf))

    def csrf_ok(self, session: ConsoleSession, offered: str | None) -> bool:
        return bool(offered) and hmac.compare_digest(offered.encode(), session.csrf.encode())

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self.key, payload.encode("ascii"), hashlib.sha256).digest()


__all__ = ["COOKIE", "CSRF_FIELD", "CSRF_HEADER", "ConsoleSession", "SessionCookies"]
