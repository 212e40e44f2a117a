"""RFC 3652 authentication on the wire: challenges, answers and sessions, the way HSJ does it.

Kept apart from ``wire_handler`` so the dispatch of operations and the proof of identity can
each be read on their own. What HSJ (``net.handle.server.HandleServer``) does, and we copy:

* a request that needs an identity gets a 402 challenge whose *envelope session id* is a fresh
  number; the pending request is filed under it (``createChallenge``) and the client copies it
  into the envelope of its ChallengeAnswerRequest (opcode 200);
* an answer that finds nothing -- never issued, already used, or expired -- gets 405
  AUTHEN_TIMEOUT (``OC_RESPONSE_TO_CHALLENGE`` in ``processRequest``);
* the answer names a key ``index:handle`` and a type, HS_SECKEY (a MAC over nonce + digest) or
  HS_PUBKEY (a signature over nonce + digest); any other type is 404 INVALID_CREDENTIAL, an
  answer that does not verify 403 AUTHENTICATION_FAILED (``verifyIdentityAndGetIndex``); index
  0 with HS_PUBKEY means "any public key of that handle" and the identity becomes the index
  that verified;
* once verified, the *original* request is executed as that identity and answered with its
  own opcode, under the answer's request id (``FixRequestIdAndThen``).

Where we differ: HSJ asks the server homing a secret key to verify the answer (opcode 201); we
only verify keys on handles this node homes and answer 406 UNABLE_TO_AUTHENTICATE otherwise.
HSJ also checks the admin lists before the signature; we verify first, so a stranger learns
nothing about who administers what.

Sessions: HSJ's sessions carry a session key (agreed by Diffie-Hellman by default, or RSA
encrypted) and every later request is MAC'd with it: ``transport.wire_sessions`` does that,
with the session table below. Our own mode 0 is the identity binding alone (see
``SessionRegistry``): the session setup itself is challenged, and the session id then stands
for that identity from the same client address until it times out or is terminated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from idnode.auth.challenge import ChallengeBook, PendingChallenge
from idnode.auth.identity import Identity
from idnode.errors import (
    AuthenticationFailed,
    AuthenTimeout,
    InvalidCredential,
    SessionTimeout,
    UnableToAuthenticate,
)
from idnode.model import HS_PUBKEY, HS_SECKEY
from idnode.names import PrefixSet
from idnode.store.base import Store
from idnode.wire.bodies import ChallengeAnswerRequest
from idnode.wire.message import Message

MAX_SESSION_ID = (1 << 31) - 1  # envelope session ids are signed 32-bit in HSJ


def peer_host(peer: str) -> str:
    """``"127.0.0.1:5555"`` -> ``"127.0.0.1"``: UDP clients change port between datagrams."""
    host, sep, port = peer.rpartition(":")
    return host.strip("[]") if sep and port.isdigit() else peer


def random_id(random_bytes: Callable[[int], bytes]) -> int:
    """A non-zero 31-bit id: unguessable, unlike HSJ's counter, since it names a pending proof."""
    while True:
        value = int.from_bytes(random_bytes(4), "big") & MAX_SESSION_ID
        if value:
            return value


@dataclass(frozen=True, slots=True)
class Challenged:
    """What we remember with a challenge: the request to run once the answer verifies."""

    request: Message
    peer_host: str


class PendingRequests:
    """Challenged requests filed under (challenge session id, client host).

    A thin layer over ``ChallengeBook`` (nonces, single use, expiry, bounded size) that knows
    the key HSJ clients use to find their challenge again.
    """

    def __init__(self, book: ChallengeBook) -> None:
        self.book = book

    def challenge(self, request: Message, digest, peer: str, challenge_id: int) -> bytes:
        """File ``request`` and return the nonce to send."""
        host = peer_host(peer)
        return self.book.issue((challenge_id, host), digest, request=Challenged(request, host))

    def take(self, challenge_id: int, peer: str) -> PendingChallenge:
        """The pending challenge an answer refers to; 405 when there is none (HSJ's code)."""
        pending = self.book.take((challenge_id, peer_host(peer)))  # raises AuthenTimeout
        if pending is None:
            raise AuthenTimeout("no pending challenge for this answer (unknown or already used)")
        return pending


async def verify_answer(
    store: Store, homed: PrefixSet, answer: ChallengeAnswerRequest, pending: PendingChallenge
) -> Identity:
    """The identity that ``answer`` proves, or an error carrying HSJ's response code."""
    from idnode.auth import answers  # imported late: written alongside this module

    auth_type = answer.auth_type
    if auth_type not in (HS_SECKEY, HS_PUBKEY):
        raise InvalidCredential(f"unknown authentication type {auth_type!r}")
    handle = answer.key_handle
    if not homed.responsible_for(handle):
        raise UnableToAuthenticate(
            f"key {answer.key_index}:{handle} is not homed on this node; cannot verify it"
        )
    if answer.key_index < 0 or (auth_type == HS_SECKEY and answer.key_index == 0):
        raise AuthenticationFailed("authentication failed: no such key")
    values = await store.get_handle(handle) or []
    candidates = sorted(
        (v for v in values if v.type == auth_type and answer.key_index in (0, v.index)),
        key=lambda v: v.index,
    )
    nonce, digest = pending.nonce, pending.digest_bytes
    for value in candidates:
        if auth_type == HS_SECKEY:
            ok = answers.verify_secret_key_answer(value.data, nonce, digest, answer.signature)
        else:
            ok = answers.verify_public_key_answer(
                value.data, nonce, digest, answer.signature, signer_handle=handle
            )
        if ok:
            return Identity(handle, value.index)
    raise AuthenticationFailed("authentication failed")


class SessionRegistry:
    """Native sessions: session id -> identity, and the host each was last used from.

    Mode 0 (ours) is the identity binding of HSJ's sessions without their session key: the id
    is a random 31-bit bearer token, only honoured from the host that set the session up.
    Keyed sessions (``create_keyed``) are honoured from any host and connection, as HSJ
    honours them: the session key, not the address, proves each message
    (``transport.wire_sessions``); their host is where the last verified message came from
    (what ``identity`` checks, for the UDP transport's amplification budget). The table of
    ``idnode.auth.sessions`` keeps the ids and their timeouts.
    """

    def __init__(self, table) -> None:
        self.table = table
        self._hosts: dict[int, str] = {}

    def create(self, identity: Identity, peer: str) -> int:
        session_id = self.table.create(identity)
        self.seen_from(session_id, peer)
        return session_id

    def create_keyed(self, keys, peer: str, timeout: float | None = None) -> int:
        """A keyed session (``auth.session_suites.SessionKeys``), not yet authenticated."""
        session_id = self.table.create(None, keys=keys, timeout=timeout)
        self.seen_from(session_id, peer)
        return session_id

    def keyed(self, session_id: int):
        """The live keyed session with this id (its use refreshes the idle timer), or None."""
        session = self.table.session(session_id) if session_id else None
        return session if session is not None and session.keys is not None else None

    def seen_from(self, session_id: int, peer: str) -> None:
        self._hosts[session_id] = peer_host(peer)
        if len(self._hosts) > 2 * self.table.max_sessions:  # forget the oldest half
            for sid in list(self._hosts)[: len(self._hosts) // 2]:
                del self._hosts[sid]

    def end(self, session_id: int) -> None:
        """Forget a session whatever its kind (a keyed session's MAC'd terminate)."""
        self.table.terminate(session_id)
        self._hosts.pop(session_id, None)

    def identity(self, session_id: int, peer: str) -> Identity:
        """The identity of a live session used from its own host; 500 otherwise (as HSJ)."""
        if self._hosts.get(session_id) != peer_host(peer):
            raise SessionTimeout("invalid session or session timed out")
        identity = self.table.get(session_id)  # refreshes the idle timer
        if identity is None:
            self._hosts.pop(session_id, None)
            raise SessionTimeout("invalid session or session timed out")
        return identity

    def terminate(self, session_id: int, peer: str) -> None:
        self.identity(session_id, peer)
        self.table.terminate(session_id)
        self._hosts.pop(session_id, None)
