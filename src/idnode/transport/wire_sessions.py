"""Keyed sessions on the wire (RFC 3652 section 3.8), served as HANDLE.NET serves them.

HSJ's ``HandleResolver`` sets up a session before every administrative request (key exchange
mode 4, Diffie-Hellman, by default) and does not fall back; ``HandleServer`` answers it. What
a session is, message by message (HSJ ``HandleServer.doSessionSetup``, ``doKeyExchange``,
``doSessionTerminate``, ``verifyIdentityAndGetIndex``, ``sendResponse``; the wire handler
routes here):

* **Setup (opcode 400)** is not challenged: it names an identity, and the answer carries a new
  session id in its envelope and the key material of the mode (``setup``):

  - 4 DH: the client's ``DH_PUB_KEY``; we answer the cipher code (4 bytes) and our public key
    in the client's group. Both derive the key (``crypto.session_crypto``).
  - 1 client cipher: the client's RSA or SM2 public key; we answer the cipher code + a fresh
    key, encrypted to it.
  - 3 handle cipher: the same, to the HS_PUBKEY at ``exchange_key_index:exchange_key_handle``
    -- a handle this node homes (we resolve no one else's: refused with 501, HSJ's code for
    "no key found in key exchange handle").
  - 2 server cipher: we answer our own public key (RSA, or SM2 under ``idis-sm``); the client
    sends the key encrypted to it with ``SessionExchangeKey`` (opcode 402).

  Anything else is 501, as HSJ answers an unknown mode; mode 0 is idnode's own identity
  binding (``wire_auth``). The session's protocol version must be 2.7 or later (HSJ's MAC).
* **Later requests** carry the session id and, when they matter, an HS_MAC credential
  (``auth.session_suites.mac_verifies``). A MAC that does not verify is 502 (HSJ
  ``RC_INVALID_SESSION_KEY``; RFC 3652 calls 502 NO_SESSION_KEY), a session counter seen
  before 505 (``RC_SESSION_MESSAGE_REJECTED``), an unknown or expired session 500. A request
  that needs an identity in a session not yet authenticated is challenged *inside* the
  session (the challenge's envelope carries the session id); when the answer proves the
  identity the setup named, the session is that identity's, and every later MAC'd request is
  accepted as it, over UDP or TCP, on any connection. A request that needs an identity but
  carries no MAC is 404, as HSJ ("Session request missing MAC code").
* **Answers** in a session are MAC'd (HS_MAC under the session key) when the request asked for
  a certified answer (CT), and encrypted when it asked (ENC) or, from protocol 2.8, when a
  resolution answer holds values without PUBLIC_READ (HSJ ``shouldEncrypt``). Setup and
  key-exchange answers are signed with the server's key instead, never with the new key.
* **Encrypted requests** (envelope flag) are decrypted before anything else (``open``).
* **Re-keying**: ``SessionExchangeKey`` with a new key encrypted to the server's key. HSJ
  accepts it only to finish a mode-2 setup, and from anyone who knows the session id; we also
  accept it on any keyed session, but then only MAC'd under the current key.
* **Terminate (401)** must be MAC'd (HSJ: 502 otherwise).
* **Timeouts**: the client asks for one in its setup; it is capped at ``[auth]
  session_timeout`` (HSJ caps nothing; its default is 24 hours of idleness).

The IDIS SDK's variant (``TransportEncryptHandler``): on a logged-in connection
(``transport.idis``) the SDK sends a mode-3 setup naming its own key under the session id it
chose for the connection, gets an SM4 key encrypted with SM2, and from then on encrypts
requests (ENC flag, envelope flag) and decrypts answers with it. That key belongs to the
connection (``StreamSession``) and dies with it, like the login; such a session is never MAC'd
(the SDK has no MAC) and its answers are signed with the server's key when asked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from weakref import WeakKeyDictionary

from idnode.auth import session_suites as suites
from idnode.auth.identity import Identity
from idnode.auth.session_suites import SessionKeys, SessionSuite
from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.config import ConfigError
from idnode.crypto import session_crypto as sc
from idnode.crypto.keys import PublicKey, decode_public_key, encode_public_key
from idnode.errors import (
    AuthenticationNeeded,
    IdnodeError,
    InvalidCredential,
    SessionFailed,
    SessionTimeout,
)
from idnode.model import HS_PUBKEY
from idnode.transport.signing import sign_message
from idnode.transport.wire_auth import SessionRegistry
from idnode.wire import bodies
from idnode.wire.credential import CREDENTIAL_MAC
from idnode.wire.envelope import Envelope, reply_version
from idnode.wire.message import Message, encode_message

log = logging.getLogger("idnode.sessions")

KEYED_MODES = frozenset(
    {
        bodies.KEY_EXCHANGE_CIPHER_CLIENT,
        bodies.KEY_EXCHANGE_CIPHER_SERVER,
        bodies.KEY_EXCHANGE_CIPHER_HDL,
        bodies.KEY_EXCHANGE_DH,
    }
)
DEFAULT_SUITES = (suites.HSJ, suites.IDIS_SM)
_NOT_SEALED = frozenset({OpCode.SESSION_SETUP, OpCode.SESSION_EXCHANGEKEY})
_ENCRYPT_FROM = (2, 8)  # HSJ shouldEncrypt: restricted values are encrypted from 2.8


def session_suites(auth_section: Any) -> tuple[SessionSuite, ...]:
    """The suites ``[auth] session_suites`` enables, in order of preference."""
    names = getattr(auth_section, "session_suites", None) or DEFAULT_SUITES
    try:
        return suites.suites_named(list(names))
    except ValueError as exc:
        raise ConfigError(f"[auth] session_suites: {exc}") from None


class SessionKeyInvalid(IdnodeError):
    """A session message whose MAC does not verify: HSJ's RC_INVALID_SESSION_KEY (502)."""

    code = ResponseCode.NO_SESSION_KEY


class SessionMessageRejected(IdnodeError):
    """A session counter seen before: a replay (HSJ RC_SESSION_MESSAGE_REJECTED, 505)."""

    code = ResponseCode.SESSION_MESSAGE_REJECTED


@dataclass(frozen=True, slots=True)
class Verified:
    """A request of a keyed session: the session, and whether its MAC verified."""

    session: Any  # auth.sessions.Session
    mac: bool

    @property
    def who(self) -> Identity | None:
        """The session's identity, for a MAC'd request of an authenticated session."""
        return self.session.identity if self.mac else None


class KeyedSessions:
    """The keyed sessions of one wire handler: setup, MAC checks, sealing, re-keying.

    ``respond(request, body)`` builds an answer as the handler does (serial, expiration);
    ``node`` gives the store, the homed prefixes and the server key.
    """

    def __init__(
        self,
        node: Any,
        registry: SessionRegistry,
        *,
        respond: Callable[[Message, bodies.Body], Message],
        random_bytes: Callable[[int], bytes],
        enabled: tuple[SessionSuite, ...] = (suites.HSJ_SUITE, suites.IDIS_SM_SUITE),
    ) -> None:
        self.node = node
        self.registry = registry
        self.respond = respond
        self.random_bytes = random_bytes
        self.enabled = enabled
        # the IDIS SDK's connection-bound sessions: the key dies with the connection
        self._connections: WeakKeyDictionary[Any, SessionKeys] = WeakKeyDictionary()

    # -- frames in -----------------------------------------------------------------------------
    def open(self, envelope: Envelope, payload: bytes, conn: Any = None) -> tuple[Envelope, bytes]:
        """An encrypted frame decrypted (the envelope flag cleared), or an error with HSJ's
        code: 500 for an unknown or expired session, 501 for one that cannot decrypt it."""
        if not envelope.encrypted:
            return envelope, payload
        if not envelope.session_id:
            raise SessionFailed("an encrypted message needs a session id")
        keys = self._keys(envelope.session_id, conn)
        if keys is None:
            raise SessionTimeout("session not available or timed out; cannot decrypt")
        if keys.key is None:
            raise SessionFailed("the session has no key yet; cannot decrypt")
        try:
            return suites.open_payload(envelope, payload, keys)
        except sc.SessionCryptoError:
            raise SessionFailed("cannot decrypt the request with the session key") from None

    def _keys(self, session_id: int, conn: Any) -> SessionKeys | None:
        if conn is not None and getattr(conn, "session_id", None) == session_id:
            keys = self._connections.get(conn)
            if keys is not None:
                return keys
        session = self.registry.keyed(session_id)
        return session.keys if session is not None else None

    # -- requests ------------------------------------------------------------------------------
    def verify(self, request: Message, peer: str) -> Verified | None:
        """The keyed session ``request`` belongs to, its MAC checked; None when its session id
        names no keyed session (no session, mode 0, a challenge id)."""
        session = self.registry.keyed(request.envelope.session_id)
        if session is None:
            return None
        keys: SessionKeys = session.keys
        cred = request.credential
        if cred is None or cred.type != CREDENTIAL_MAC:
            return Verified(session, mac=False)
        if not suites.mac_verifies(request, keys):
            log.info("session %s: a MAC that does not verify, from %s", session.id, peer)
            raise SessionKeyInvalid("session authentication failed (the MAC does not verify)")
        if not keys.counters.add(cred.signer.index):
            raise SessionMessageRejected(
                f"duplicate session counter {cred.signer.index} in session {session.id}"
            )
        self.registry.seen_from(session.id, peer)
        return Verified(session, mac=True)

    async def dispatch(
        self, handler: Any, request: Message, verified: Verified, peer: str
    ) -> Message:
        """Answer a request of a keyed session (the wire handler's ``dispatch`` for them)."""
        opcode = request.header.opcode
        session = verified.session
        if opcode == OpCode.SESSION_TERMINATE:
            if not verified.mac:
                raise SessionKeyInvalid("terminating a session needs its MAC")
            self.registry.end(session.id)
            return self.respond(request, bodies.EmptyResponse())
        if opcode == OpCode.SESSION_EXCHANGEKEY:
            return self._exchange_key(request, verified)
        if session.keys.key is None:
            raise IdnodeError(
                "the session has no key yet: send it with SessionExchangeKey",
                code=ResponseCode.NO_SESSION_KEY,
            )
        who = verified.who
        try:
            return await handler.execute(request, who, peer)
        except AuthenticationNeeded:
            if who is not None:
                raise
            if not verified.mac:
                raise InvalidCredential("session request missing MAC code") from None
            return handler._challenge(request, peer, challenge_id=session.id)

    def authenticated(self, original: Message, who: Identity, peer: str) -> None:
        """A challenge answer proved ``who`` for ``original``: if that request was in a keyed
        session set up for ``who``, the session is now ``who``'s (HSJ
        ``setSessionAuthenticated``; another identity does not take the session over)."""
        session = self.registry.keyed(original.envelope.session_id)
        if session is None or session.identity is not None:
            return
        if suites.same_identity(session.keys.claimed, who.handle, who.index):
            self.registry.table.authenticate(session.id, who)
            self.registry.seen_from(session.id, peer)
            log.info("session %s authenticated as %s", session.id, who)

    # -- setup ---------------------------------------------------------------------------------
    def claims_setup(self, request: Message, conn: Any) -> bool:
        """Whether a request on an IDIS connection sets up the connection's key."""
        body = request.body
        return (
            isinstance(body, bodies.SessionSetupRequest)
            and body.mode in KEYED_MODES
            and getattr(conn, "session_id", None) == request.envelope.session_id
        )

    async def setup(
        self,
        request: Message,
        body: bodies.SessionSetupRequest,
        peer: str,
        *,
        conn: Any = None,
    ) -> Message:
        """A new keyed session (modes 1-4); ``conn``: bind it to that IDIS connection."""
        version = reply_version(request.envelope)
        if version < suites.MIN_MAC_VERSION:
            raise SessionFailed(
                f"a keyed session needs protocol 2.7 or later; this client speaks "
                f"{version[0]}.{version[1]}"
            )
        mode = body.mode
        if mode == bodies.KEY_EXCHANGE_DH:
            keys, data = self._setup_dh(body, version)
        elif mode == bodies.KEY_EXCHANGE_CIPHER_CLIENT:
            keys, data = self._send_key_to(self._decode_key(body.public_key), mode, version)
        elif mode == bodies.KEY_EXCHANGE_CIPHER_HDL:
            public = await self._exchange_key_of(body.exchange_key_handle, body.exchange_key_index)
            keys, data = self._send_key_to(public, mode, version)
        elif mode == bodies.KEY_EXCHANGE_CIPHER_SERVER:
            keys, data = self._setup_server_cipher(version)
        else:
            raise SessionFailed(f"unrecognized key exchange mode {mode}")
        keys.claimed = suites.claimed_identity(body.identity_handle, body.identity_index)
        response = self.respond(request, bodies.SessionSetupResponse(mode, data))
        if conn is not None:
            self._connections[conn] = keys  # the SDK's own session id stays in the envelope
            return response
        session_id = self.registry.create_keyed(keys, peer, timeout=body.timeout or None)
        log.info("session %s set up (mode %s, %s) from %s", session_id, mode, keys.suite.name, peer)
        response.envelope = replace(response.envelope, session_id=session_id)
        return response

    def _setup_dh(
        self, body: bodies.SessionSetupRequest, version: tuple[int, int]
    ) -> tuple[SessionKeys, bytes]:
        try:
            theirs = sc.decode_dh_public(body.public_key)
        except sc.SessionCryptoError as exc:
            raise SessionFailed(f"cannot use the client's DH key: {exc}") from None
        cipher = suites.for_exchange(self.enabled, None).dh_cipher
        ours = sc.DHKeyPair(theirs.p, theirs.g)
        try:
            key = sc.key_from_dh(ours.agree(theirs), cipher)
        except sc.SessionCryptoError as exc:
            raise SessionFailed(f"cannot use the client's DH key: {exc}") from None
        data = cipher.to_bytes(4, "big") + ours.public.encode()
        return SessionKeys(bodies.KEY_EXCHANGE_DH, cipher, key, version), data

    def _decode_key(self, data: bytes) -> PublicKey:
        try:
            return decode_public_key(data)
        except IdnodeError:
            raise SessionFailed("cannot read the client's public key") from None

    def _send_key_to(
        self, public: PublicKey, mode: int, version: tuple[int, int]
    ) -> tuple[SessionKeys, bytes]:
        """Modes 1 and 3: a fresh key of the suite's cipher, encrypted to ``public``."""
        cipher = suites.for_exchange(self.enabled, public).wrapped_cipher
        key = sc.generate_session_key(cipher, self.random_bytes)
        try:
            data = sc.wrap_key(public, sc.pack_key(cipher, key))
        except sc.SessionCryptoError as exc:
            raise SessionFailed(f"cannot encrypt a session key to that key: {exc}") from None
        return SessionKeys(mode, cipher, key, version), data

    async def _exchange_key_of(self, handle: str, index: int) -> PublicKey:
        """The public key of a mode-3 setup: an HS_PUBKEY of a handle this node homes."""
        if not handle or not self.node.homed.responsible_for(handle):
            raise SessionFailed(f"no key found in key exchange handle {index}:{handle}")
        values = await self.node.store.get_handle(handle) or []
        for value in sorted(values, key=lambda v: v.index):
            if value.type == HS_PUBKEY and index in (0, value.index):
                try:
                    return decode_public_key(value.data)
                except IdnodeError:
                    continue
        raise SessionFailed(f"no key found in key exchange handle {index}:{handle}")

    def _setup_server_cipher(self, version: tuple[int, int]) -> tuple[SessionKeys, bytes]:
        """Mode 2: our public key; the key comes with the client's SessionExchangeKey."""
        private = self.node.private_key
        if private is None or not sc.can_wrap(private):
            raise SessionFailed("KEY_EXCHANGE_CIPHER_SERVER not supported: no RSA or SM2 key")
        suite = suites.for_exchange(self.enabled, private)
        keys = SessionKeys(bodies.KEY_EXCHANGE_CIPHER_SERVER, suite.wrapped_cipher, None, version)
        return keys, encode_public_key(private)

    # -- key exchange (finishing mode 2, and re-keying) ----------------------------------------
    def _exchange_key(self, request: Message, verified: Verified) -> Message:
        keys: SessionKeys = verified.session.keys
        if keys.key is not None and not verified.mac:
            raise SessionKeyInvalid("re-keying must be MAC'd with the current session key")
        body = request.body
        if not isinstance(body, bodies.SessionExchangeKeyRequest) or not body.key:
            raise SessionFailed("SessionExchangeKey without a key")
        private = self.node.private_key
        if private is None or not sc.can_wrap(private):
            raise SessionFailed("this server's key cannot receive a session key")
        try:
            cipher, key = sc.unpack_key(sc.unwrap_key(private, body.key))
        except sc.SessionCryptoError:
            raise SessionFailed("can't decrypt the client's session key") from None
        allowed = {c for suite in self.enabled for c in suite.ciphers}
        if cipher not in allowed:
            raise SessionFailed(f"session cipher {cipher} is not enabled on this server")
        keys.rekey(cipher, key)
        log.info("session %s keyed (cipher %s)", verified.session.id, cipher)
        return self.respond(request, bodies.EmptyResponse())

    # -- answers out ---------------------------------------------------------------------------
    def seal(self, response: Message, conn: Any = None, server_key: Any = None) -> bytes | None:
        """The encoded answer of a keyed session -- MAC'd when certified, encrypted when asked
        -- or None when the answer is not one (the caller encodes it as any other)."""
        session_id = response.envelope.session_id
        if not session_id or response.header.opcode in _NOT_SEALED:
            return None
        on_connection = conn is not None and getattr(conn, "session_id", None) == session_id
        keys = self._connections.get(conn) if on_connection else None
        if keys is None:
            session = self.registry.keyed(session_id)
            keys = session.keys if session is not None else None
            on_connection = False
        if keys is None or keys.key is None:
            return None
        msg = response
        if msg.header.flags & OpFlag.CT:
            if on_connection:  # the SDK verifies signatures, not MACs
                msg = sign_message(msg, server_key) if server_key is not None else msg
            else:
                msg = suites.mac_message(msg, keys)
        if not (msg.header.flags & OpFlag.ENC or _restricted(msg)):
            return encode_message(msg)
        return suites.encode_sealed(msg, keys, self.random_bytes)


def _restricted(msg: Message) -> bool:
    """HSJ ``shouldEncrypt`` of an answer: from 2.8, values a stranger may not read."""
    if msg.envelope.version < _ENCRYPT_FROM:
        return False
    values = getattr(msg.body, "values", None) or ()
    return any(not v.public_read for v in values)
