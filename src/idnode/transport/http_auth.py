"""Who is calling over HTTP, and the sessions API (Handle.Net technical manual 14.6-14.7).

The HTTP face of RFC 3652 authentication, decided once per request before any operation runs,
as HSJ's ``StandardHandleAuthenticationFilter`` does:

* ``Authorization: Basic base64("300%3A0.NA/P" ":" secret)`` -- checked against the HS_SECKEY
  value at that index (raw, HSJ's hex SHA-1 form, or our PBKDF2 form);
* ``Authorization: Handle sessionId="..."`` -- a session authenticated earlier through
  ``PUT /api/sessions/this``; with ``id``, ``type``, ``cnonce``, ``alg`` and ``signature`` the
  same header authenticates the session on the spot (challenge-response over the session's
  nonce and the client's cnonce);
* the session cookie ``JSESSIONID`` (HSJ's servlet container sets it) -- HttpOnly,
  SameSite=Strict, so a cross-site page cannot ride on it;
* over HTTPS, a TLS client certificate naming ``index:handle`` whose key is that identity's
  HS_PUBKEY, when nothing above authenticates (``Authorization: Handle clientCert="true"``
  or no header at all, as pyhandle sends it); see ``transport/tls.py``.

Credentials that are presented but do not verify stop the request with 401 and a fresh
challenge (``WWW-Authenticate: Basic realm="handle"`` and ``Handle sessionId, nonce``), never
falling back to anonymous: that is HSJ's rule and what pyhandle recognises as
``HandleAuthenticationError``. Messages name the identity, never the secret.

Sessions live in the node's store (``auth.rest_sessions``), not in a worker's memory: with
``idnode serve --workers N`` the next request of a client may land on any worker, and each
must honour (and, after ``DELETE /api/sessions/this`` or an expiry, refuse) the same session.

A refused request opens no session (``DeferredChallenges``): the challenge of a 401 names a
session that does not exist yet -- its id carries the nonce, an expiry and a MAC under a key
derived from the node's private key, the same in every worker -- and the session is made
(in the store, under that id) only when a client answers it, on whichever worker. Before,
every anonymous 401 opened one, and a flood of them filled the table (requests fell from
3,010 to 442 a second past 10,000 sessions).

Where we differ from HSJ: it refuses authentication over plain HTTP (403) and asks the server
homing a key to verify it; idnode accepts it until TLS arrives, and only verifies keys stored
on this node.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from idnode.auth.headers import (
    handle_identity,
    parse_basic_authorization,
    parse_handle_authorization,
    quote_param,
)
from idnode.auth.identity import Identity
from idnode.auth.rest import verify_rest_session_answer
from idnode.auth.rest_sessions import RestSession, StoredSessions
from idnode.auth.secrets import verify_plain_secret
from idnode.auth.sessions import REST_NONCE_SIZE
from idnode.codes import ResponseCode
from idnode.crypto.keys import PrivateKey, encode_private_key, sign
from idnode.errors import IdnodeError, SessionFailed
from idnode.model import HS_SECKEY, HandleValue
from idnode.names import PrefixSet
from idnode.runtime import Runtime
from idnode.store.base import Store
from idnode.transport.tls import CertificateRefused, certificate_caller, peer_certificate

SESSION_COOKIE = "JSESSIONID"
SESSIONS_PATH = "/api/sessions"
SERVER_ALG = "SHA256"
# fields of a challenge answer; any of them in a request means "authenticate now"
ANSWER_FIELDS = ("id", "type", "cnonce", "alg", "signature", "salt", "iterations", "length")
MAX_SESSION_ENTITY = 64 * 1024
DEFERRED_MARK = "~"  # not in the URL-safe base64 of real session tokens
DEFERRED_TTL = 300  # seconds a 401's challenge may be answered (below the session timeout)


class HttpAuthFailed(Exception):
    """Credentials were presented and did not verify (HTTP 401, response code 402).

    ``session`` is the session the client used, so the 401 can carry its fresh nonce.
    """

    def __init__(self, message: str, session: RestSession | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.session = session


@dataclass(frozen=True, slots=True)
class Caller:
    """The outcome of authentication: who (None = anonymous) and through which session."""

    identity: Identity | None = None
    session: RestSession | None = None


class DeferredChallenges:
    """Challenges handed out by 401s without opening a session until one is answered.

    The session id of such a challenge is ``~`` + base64url(nonce, expiry, MAC): nothing is
    stored when it is issued, so refused requests cost no memory. The first request that
    answers it opens the session in the store under that id (``StoredSessions.adopt``), on
    whichever worker it lands; later requests find it there like any other session.

    The MAC key is derived from ``secret`` (the node's private key), so every worker of the
    node checks the challenges any of them issued, and nobody without that key can mint
    one (a challenge chosen by a client could replay an answer it captured). Without a
    secret (a node built without a key, in tests) the key is this process's own."""

    def __init__(
        self, runtime: Runtime, ttl: int = DEFERRED_TTL, secret: bytes | None = None
    ) -> None:
        self.clock = runtime.clock
        self.random = runtime.random
        if secret:
            self.key = hashlib.sha256(b"idnode rest challenges\0" + secret).digest()
        else:
            self.key = bytes(runtime.random(32))
        self.ttl = ttl

    def issue(self) -> tuple[str, bytes]:
        """A challenge: (the session id to name in it, its nonce)."""
        nonce = bytes(self.random(REST_NONCE_SIZE))
        body = nonce + (int(self.clock()) + self.ttl).to_bytes(8, "big")
        token = base64.urlsafe_b64encode(body + self._mac(body)).decode("ascii").rstrip("=")
        return DEFERRED_MARK + token, nonce

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self.key, body, hashlib.sha256).digest()[:16]

    def nonce_of(self, token: str) -> bytes | None:
        """The nonce of a challenge this node issued and that has not expired."""
        if not token.startswith(DEFERRED_MARK) or len(token) > 80:
            return None
        text = token[1:]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except ValueError:
            return None
        if len(raw) != REST_NONCE_SIZE + 8 + 16:
            return None
        body, mac = raw[:-16], raw[-16:]
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        if int.from_bytes(body[REST_NONCE_SIZE:], "big") < self.clock():
            return None
        return body[:REST_NONCE_SIZE]


class HttpAuthenticator:
    """Verifies HTTP credentials against keys in the local store; owns the REST sessions."""

    def __init__(
        self,
        store: Store,
        homed: PrefixSet,
        sessions: StoredSessions,
        runtime: Runtime,
        server_key: PrivateKey | None = None,
    ) -> None:
        self.store = store
        self.homed = homed
        self.sessions = sessions
        self.clock = runtime.clock  # certificate validity
        self.random_bytes = runtime.random
        self.server_key = server_key
        secret = encode_private_key(server_key) if server_key is not None else None
        self.deferred = DeferredChallenges(runtime, secret=secret)
        # an ended challenge's row is kept until it idles out: longer than it can be answered
        if self.deferred.ttl >= sessions.timeout:
            raise ValueError("the session timeout must exceed the challenges' lifetime")

    async def session_for(self, token: str, *, answering: bool = False) -> RestSession | None:
        """The live session a REST ``sessionId`` names: opened by ``POST /api/sessions``, or
        made from a 401's challenge -- when ``answering`` it, or answered before."""
        session = await self.sessions.by_token(token)
        if session is not None or not answering or not token.startswith(DEFERRED_MARK):
            return session
        nonce = self.deferred.nonce_of(token)
        if nonce is None:
            return None
        try:
            return await self.sessions.adopt(token, nonce)
        except SessionFailed:  # the table is full of authenticated sessions
            return None

    # -- per request ---------------------------------------------------------------------
    async def caller(self, request: Request) -> Caller:
        """Who sent ``request``; raises ``HttpAuthFailed`` for credentials that fail."""
        header = request.headers.get("authorization")
        if header is None:
            cookie = request.cookies.get(SESSION_COOKIE)
            session = await self.sessions.by_token(cookie) if cookie else None
            if session is not None and session.identity is not None:
                return Caller(session.identity, session)
            return Caller(await self._certificate(request), session)
        scheme = header.strip().split(None, 1)[0].lower() if header.strip() else ""
        if scheme == "basic":
            return Caller(await self.verify_basic(header))
        if scheme == "handle":
            return await self._handle_scheme(_parse_handle(header), request)
        raise HttpAuthFailed("unsupported Authorization scheme; use Basic or Handle")

    async def _handle_scheme(self, params: Mapping[str, str], request: Request) -> Caller:
        token = params.get("sessionId")
        answering = any(name in params for name in ANSWER_FIELDS)
        wants_cert = params.get("clientCert", "").lower() == "true"
        if token is None:
            if answering:
                raise HttpAuthFailed("Authorization: Handle answer needs the sessionId")
            return Caller(await self._certificate(request, required=wants_cert))
        session = await self.session_for(token, answering=answering)
        if session is None:
            raise HttpAuthFailed("unknown or expired session")
        if answering:
            return Caller(await self.answer(session, params), session)
        if session.identity is None:
            return Caller(await self._certificate(request, required=wants_cert), session)
        return Caller(session.identity, session)

    async def _certificate(self, request: Request, required: bool = False) -> Identity | None:
        """HSJ ``authenticateViaClientSideCert``: a TLS client certificate, when no other
        credential is presented, names the caller (transport/tls.py checks what it proves).
        ``clientCert="true"`` without a certificate is refused rather than anonymous."""
        cert = peer_certificate(request.scope)
        if cert is None:
            if required:
                raise HttpAuthFailed('clientCert="true" but no client certificate over HTTPS')
            return None
        try:
            return await certificate_caller(cert, self.store, self.homed, self.clock)
        except CertificateRefused as exc:
            raise HttpAuthFailed(f"client certificate refused: {exc}") from None

    async def verify_basic(self, header: str) -> Identity:
        """The identity of a Basic header whose secret matches its HS_SECKEY value."""
        try:
            identity, secret = parse_basic_authorization(header)
        except IdnodeError as exc:
            raise HttpAuthFailed(f"malformed Basic credentials: {exc.message}") from None
        value = await self._key_value(identity)
        try:
            ok = value is not None and value.type == HS_SECKEY
            ok = ok and verify_plain_secret(value.data, secret)
        except IdnodeError:
            ok = False
        if not ok:
            raise HttpAuthFailed(f"identity {identity} not verified")
        return identity

    async def answer(self, session: RestSession, params: Mapping[str, str]) -> Identity:
        """Authenticate ``session`` with a challenge answer over its nonce.

        A session already bound to the same identity needs no new answer (HSJ's "seen
        before"): its id is the bearer credential. Otherwise the nonce is single use: it is
        spent by a success and replaced after a failure, so an answer cannot be replayed --
        the store replaces it only if it is still the one answered, so two workers given the
        same answer at once accept it at most once.
        """
        try:
            identity = handle_identity(dict(params))
        except IdnodeError as exc:
            raise HttpAuthFailed(exc.message, session) from None
        if session.identity is not None and session.identity == identity:
            return identity
        nonce = session.nonce
        if nonce is None:
            raise HttpAuthFailed("this session's nonce was spent; open a new session", session)
        if not await self.sessions.spend_nonce(session, nonce):  # single use, whatever comes
            raise HttpAuthFailed("this session's nonce was spent; open a new session", session)
        try:
            ok = verify_rest_session_answer(params, nonce, await self._key_value(identity))
        except IdnodeError as exc:
            msg = f"identity {identity} not verified: {exc.message}"
            raise HttpAuthFailed(msg, session) from None
        if not ok:
            raise HttpAuthFailed(f"identity {identity} not verified", session)
        try:
            await self.sessions.authenticate(session, identity)
        except IdnodeError:
            raise HttpAuthFailed("unknown or expired session") from None
        return identity

    async def _key_value(self, identity: Identity) -> HandleValue | None:
        """The key value an identity names, if this node holds it."""
        if not self.homed.responsible_for(identity.handle):
            return None
        values = await self.store.get_handle(identity.handle) or []
        return next((v for v in values if v.index == identity.index), None)

    # -- challenges ----------------------------------------------------------------------
    async def challenge_headers(
        self, request: Request, session: RestSession | None = None, error: str | None = None
    ) -> list[tuple[str, str]]:
        """``WWW-Authenticate`` headers of a 401, as HSJ's ``HeaderFixingResponseWrapper``:
        Basic (unless the client chose the Handle scheme or is a script), then a Handle
        challenge naming a session with a fresh nonce to answer."""
        headers = []
        auth = request.headers.get("authorization", "")
        wants_basic = auth.lower().startswith("basic") or (
            not auth and request.headers.get("x-requested-with") != "XMLHttpRequest"
        )
        if wants_basic:
            headers.append(("WWW-Authenticate", 'Basic realm="handle"'))
        if session is None or session.authenticated:
            token, nonce = self.deferred.issue()  # no session until someone answers it
        else:
            token, nonce = session.token, await self.sessions.ensure_nonce(session)
        parts = [f"sessionId={quote_param(token)}", f"nonce={quote_param(_b64(nonce))}"]
        if error:
            parts.append(f"error={quote_param(_header_text(error))}")
        headers.append(("WWW-Authenticate", "Handle " + ", ".join(parts)))
        return headers

    def server_signature(self, session: RestSession, cnonce: bytes) -> dict[str, str]:
        """``serverAlg`` / ``serverSignature`` over nonce || cnonce (manual 14.6.8)."""
        if self.server_key is None or session.nonce is None:
            return {}
        signature = sign(self.server_key, session.nonce + cnonce, SERVER_ALG)
        return {"serverAlg": SERVER_ALG, "serverSignature": _b64(signature)}


# -- the sessions API -------------------------------------------------------------------------


def session_routes(auth: HttpAuthenticator) -> list[Route]:
    """``/api/sessions`` and ``/api/sessions/this`` (manual 14.7; HSJ ``SessionsServlet``)."""

    async def collection(request: Request) -> Response:
        if request.method != "POST":
            return _error(405, ResponseCode.PROTOCOL_ERROR, "use POST to open a session")
        try:
            params = await _params(request)
        except _BadRequest as exc:
            return _error(400, ResponseCode.PROTOCOL_ERROR, str(exc))
        if "sessionId" in params:
            return _error(400, ResponseCode.PROTOCOL_ERROR, "POST opens a new session")
        try:
            session = await auth.sessions.open_rest()
        except IdnodeError as exc:
            return _error(503, exc.code, exc.message)
        extra = _signature_fields(auth, session, params)
        error = None
        if request.headers.get("authorization", "").lower().startswith("basic"):
            try:
                identity = await auth.verify_basic(request.headers["authorization"])
                await auth.sessions.authenticate(session, identity)
            except HttpAuthFailed as exc:
                error = exc.message
        response = _session_json(session, 201, extra, error)
        response.headers["Location"] = SESSIONS_PATH + "/this"
        _set_cookie(response, session)
        return response

    async def this(request: Request) -> Response:
        try:
            params = await _params(request)
        except _BadRequest as exc:
            return _error(400, ResponseCode.PROTOCOL_ERROR, str(exc))
        token = params.get("sessionId") or request.cookies.get(SESSION_COOKIE)
        answering = any(name in params for name in ANSWER_FIELDS)
        session = await auth.session_for(token, answering=answering) if token else None
        if request.method == "DELETE":
            if session is None:
                return _no_session()
            await auth.sessions.terminate(session, keep_ended=token.startswith(DEFERRED_MARK))
            response = Response(status_code=204)
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        if session is None:
            if token or request.method != "GET":
                return _no_session()
            return _json({"authenticated": False}, 200)
        extra = _signature_fields(auth, session, params)
        try:
            if any(name in params for name in ANSWER_FIELDS):
                await auth.answer(session, params)
            elif request.headers.get("authorization", "").lower().startswith("basic"):
                identity = await auth.verify_basic(request.headers["authorization"])
                await auth.sessions.authenticate(session, identity)
        except HttpAuthFailed as exc:
            return _session_json(session, 401, extra, exc.message)
        return _session_json(session, 200, extra)

    return [
        Route(SESSIONS_PATH, collection, methods=["GET", "POST", "PUT", "DELETE"]),
        Route(SESSIONS_PATH + "/", collection, methods=["GET", "POST", "PUT", "DELETE"]),
        Route(SESSIONS_PATH + "/this", this, methods=["GET", "POST", "PUT", "DELETE"]),
    ]


class _BadRequest(Exception):
    pass


async def _params(request: Request) -> dict[str, str]:
    """Session fields from the Authorization: Handle header and a JSON entity (the entity's
    ``id`` is not percent-encoded, the header's is; HSJ ``fromHeaderAndParameters``)."""
    params: dict[str, str] = {}
    header = request.headers.get("authorization", "")
    if header.strip().lower().startswith("handle"):
        try:
            params.update(parse_handle_authorization(header))
        except IdnodeError as exc:
            raise _BadRequest(f"malformed Authorization header: {exc.message}") from None
    body = await request.body()
    if body.strip():
        if len(body) > MAX_SESSION_ENTITY:
            raise _BadRequest("session request entity too large")
        try:
            entity = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _BadRequest("session request entity is not JSON") from None
        if not isinstance(entity, dict):
            raise _BadRequest("session request entity must be a JSON object")
        for name, value in entity.items():
            if name in ("sessionId", *ANSWER_FIELDS) and value is not None:
                if isinstance(value, bool) or not isinstance(value, str | int):
                    raise _BadRequest(f"session field {name} must be a string")
                params[name] = str(value)
    return params


def _signature_fields(
    auth: HttpAuthenticator, session: RestSession, params: Mapping[str, str]
) -> dict[str, str]:
    """The server's signature when the client sent a cnonce before answering (14.6.8)."""
    if "cnonce" not in params or "signature" in params:
        return {}
    try:
        cnonce = base64.b64decode(params["cnonce"], validate=True)
    except ValueError:
        return {}
    return auth.server_signature(session, cnonce)


def session_representation(
    session: RestSession, extra: Mapping[str, str] | None = None, error: str | None = None
) -> dict[str, Any]:
    """HSJ's session object: sessionId, nonce (while one is open), authenticated and id."""
    out: dict[str, Any] = {"sessionId": session.token}
    if session.nonce is not None:
        out["nonce"] = _b64(session.nonce)
    out.update(extra or {})
    if session.identity is not None:
        out["authenticated"] = True
        out["id"] = str(session.identity)
    else:
        out["authenticated"] = False
    if error:
        out["error"] = error
    return out


def _session_json(
    session: RestSession,
    status: int,
    extra: Mapping[str, str] | None = None,
    error: str | None = None,
) -> Response:
    body = session_representation(session, extra, error)
    if status == 401:
        body["responseCode"] = int(ResponseCode.AUTHENTICATION_NEEDED)
        body["message"] = error or "authentication failed"
    return _json(body, status)


def _set_cookie(response: Response, session: RestSession) -> None:
    response.set_cookie(SESSION_COOKIE, session.token, path="/", httponly=True, samesite="strict")


def _no_session() -> Response:
    return _error(403, ResponseCode.INVALID_CREDENTIAL, "no such session (expired or deleted)")


def _error(status: int, code: ResponseCode, message: str) -> Response:
    return _json({"responseCode": int(code), "message": message}, status)


def _json(body: Mapping[str, Any], status: int) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _parse_handle(header: str) -> dict[str, str]:
    try:
        return parse_handle_authorization(header)
    except IdnodeError as exc:
        raise HttpAuthFailed(f"malformed Authorization: Handle header: {exc.message}") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _header_text(text: str) -> str:
    """Header-safe ASCII: HTTP headers cannot carry control or non-ASCII characters."""
    return "".join(c if " " <= c < "\x7f" else "?" for c in text)[:300]
