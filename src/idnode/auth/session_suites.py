"""Session suites: which cipher a keyed session gets and how its messages are MAC'd.

A keyed session (RFC 3652 section 3.8, key exchange modes 1-4) holds one session key; what
the key is used for is the same in every suite -- a MAC over each message HSJ's way
(``wire.credential.signing_input``) and, when asked, the whole message encrypted -- but the
algorithms differ:

* ``hsj``: what HANDLE.NET does. DH sessions (mode 4) get an AES key (HSJ's default
  ``encryption_algorithm``), keys sent under RSA get AES too; MAC HMAC-SHA256. A client may
  also send the server a DES or DESede key (mode 2, re-keying), which is accepted.
* ``idis-sm``: the Chinese national algorithms, after Teleinfo's ``id-pointer-sdk``: SM4
  session keys (algorithm code 4), sent to the client encrypted with SM2, messages encrypted
  with SM4 as the SDK does; MAC HMAC-SM3 (the SDK MACs nothing: inferred, docs/crypto.md).

``Suite.for_exchange`` picks the suite of a new session from what the client offered: an SM2
key can only be served by ``idis-sm``; a DH or RSA exchange by the first enabled suite
(``[auth] session_suites``, ``hsj`` first by default, so HANDLE.NET clients get what they
expect). After that the session's cipher names its suite (``suite_for_cipher``), which is how
both ends know the MAC without saying it.

``SessionKeys`` is the per-session state both ends keep (server: ``auth.sessions.Session.keys``;
client: ``client.admin``), with the replay window of HSJ's session counters.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Protocol

from idnode.crypto import session_crypto as sc
from idnode.crypto.keys import PrivateKey, PublicKey
from idnode.crypto.sm2 import SM2PrivateKey, SM2PublicKey
from idnode.errors import IdnodeError, SessionFailed
from idnode.model import ValueReference
from idnode.runtime import Random
from idnode.wire.credential import CREDENTIAL_MAC, Credential, signing_input
from idnode.wire.envelope import Envelope
from idnode.wire.message import Message, encode_header_body, encode_payload

HSJ = "hsj"
IDIS_SM = "idis-sm"
MIN_MAC_VERSION = (2, 7)  # HMAC-SHA256 over envelope fields + message: HSJ 2.7 and later
COUNTER_WINDOW = 200  # HSJ SessionInfo: session counters remembered against replay


class SessionSuite(Protocol):
    """What a suite decides. Implementations are stateless."""

    name: str
    mac_algorithm: str  # written in the HS_MAC credentials of this suite's sessions
    dh_cipher: int  # the session cipher a DH (mode 4) session gets
    wrapped_cipher: int  # the cipher of a key sent encrypted to a public key (modes 1-3)
    ciphers: frozenset[int]  # ciphers a client may choose (mode 2, re-keying)

    def serves(self, key: PublicKey | PrivateKey | None) -> bool:
        """Whether this suite can send a session key to ``key`` (None: a DH exchange)."""


@dataclass(frozen=True)
class _Suite:
    name: str
    mac_algorithm: str
    dh_cipher: int
    wrapped_cipher: int
    ciphers: frozenset[int]
    sm2: bool

    def serves(self, key: PublicKey | PrivateKey | None) -> bool:
        if key is None:
            return True
        if isinstance(key, SM2PublicKey | SM2PrivateKey):
            return self.sm2
        return sc.can_wrap(key)


HSJ_SUITE: SessionSuite = _Suite(
    HSJ,
    sc.MAC_HMAC_SHA256,
    dh_cipher=sc.ALG_AES,
    wrapped_cipher=sc.ALG_AES,
    ciphers=frozenset({sc.ALG_DES, sc.ALG_DESEDE, sc.ALG_AES}),
    sm2=False,
)
IDIS_SM_SUITE: SessionSuite = _Suite(
    IDIS_SM,
    sc.MAC_HMAC_SM3,
    dh_cipher=sc.ALG_SM4,
    wrapped_cipher=sc.ALG_SM4,
    ciphers=frozenset({sc.ALG_SM4}),
    sm2=True,
)
SUITES: dict[str, SessionSuite] = {HSJ: HSJ_SUITE, IDIS_SM: IDIS_SM_SUITE}


def suites_named(names: list[str] | tuple[str, ...]) -> tuple[SessionSuite, ...]:
    """The suites of ``[auth] session_suites``, in order; ``ValueError`` for an unknown name."""
    out = []
    for name in names:
        if name not in SUITES:
            raise ValueError(f"unknown session suite {name!r}; known: {', '.join(SUITES)}")
        out.append(SUITES[name])
    return tuple(out)


def for_exchange(
    enabled: tuple[SessionSuite, ...], key: PublicKey | PrivateKey | None
) -> SessionSuite:
    """The first enabled suite that can serve an exchange with ``key`` (None: DH)."""
    for suite in enabled:
        if suite.serves(key):
            return suite
    kind = "Diffie-Hellman" if key is None else type(key).__name__
    raise SessionFailed(f"no enabled session suite serves a {kind} key exchange")


def suite_for_cipher(cipher: int) -> SessionSuite:
    """The suite a session's cipher implies (how both ends agree on the MAC)."""
    return IDIS_SM_SUITE if cipher == sc.ALG_SM4 else HSJ_SUITE


# --- per-session state ----------------------------------------------------------------------


class CounterWindow:
    """HSJ's replay defence (``SessionInfo.addSessionCounter``): each MAC'd message carries a
    counter; one seen before, or older than everything remembered, is refused."""

    def __init__(self, size: int = COUNTER_WINDOW) -> None:
        self.size = size
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._floor = 0  # counters at or below this are no longer remembered: refused

    def add(self, counter: int, *, unique: bool = True) -> bool:
        """Record ``counter``; False when ``unique`` and it was seen (or is too old). 0 is
        HSJ's "no counter" and always passes."""
        if counter == 0:
            return True
        if unique and (counter <= self._floor or counter in self._seen):
            return False
        self._seen[counter] = None
        while len(self._seen) > self.size:
            oldest, _ = self._seen.popitem(last=False)
            self._floor = max(self._floor, oldest)
        return True


@dataclass(slots=True)
class SessionKeys:
    """The key state of one keyed session.

    ``key`` is None only between a mode-2 setup and the client's key exchange. ``claimed`` is
    the identity the setup named, ``(handle, index)`` (index 0: any key of the handle), which
    the session becomes once a challenge inside it is answered by that identity.
    """

    mode: int
    cipher: int
    key: bytes | None
    version: tuple[int, int]
    claimed: tuple[str, int] | None = None
    counters: CounterWindow = field(default_factory=CounterWindow)
    next_counter: int = 1  # our own outgoing counter (HSJ starts at 1)

    @property
    def suite(self) -> SessionSuite:
        return suite_for_cipher(self.cipher)

    def rekey(self, cipher: int, key: bytes) -> None:
        self.cipher, self.key = sc.check_algorithm(cipher), sc.check_session_key(cipher, key)

    def take_counter(self) -> int:
        counter = self.next_counter
        self.next_counter = (counter % 0x7FFFFFFF) + 1
        return counter


# --- messages under a session key -------------------------------------------------------------


def mac_message(msg: Message, keys: SessionKeys) -> Message:
    """``msg`` with an HS_MAC credential under the session key (HSJ ``signMessage(byte[])``):
    the signer is an empty handle whose index is the session counter."""
    if keys.key is None:
        raise SessionFailed("the session has no key yet")
    counter = keys.take_counter()
    data = signing_input(msg.envelope, encode_header_body(msg), counter, mac=True)
    algorithm = keys.suite.mac_algorithm
    credential = Credential(
        type=CREDENTIAL_MAC,
        digest_algorithm=algorithm,
        signature=sc.mac(algorithm, keys.key, data),
        signer=ValueReference("", counter),
    )
    return replace(msg, credential=credential)


class MacRefused(IdnodeError):
    """A message's HS_MAC does not verify; ``code`` says why (HSJ's codes, see caller)."""


def mac_verifies(msg: Message, keys: SessionKeys) -> bool:
    """Whether a decoded message's HS_MAC credential verifies under the session key (any
    algorithm this session's suite writes or HSJ's, compared case-insensitively)."""
    cred = msg.credential
    if keys.key is None or cred is None or cred.type != CREDENTIAL_MAC:
        return False
    if msg.envelope.version < MIN_MAC_VERSION or msg.header_body is None:
        return False
    accepted = {keys.suite.mac_algorithm.upper(), sc.MAC_HMAC_SHA256}
    if cred.digest_algorithm.upper() not in accepted:
        return False
    data = signing_input(msg.envelope, msg.header_body, cred.signer.index, mac=True)
    return sc.verify_mac(cred.digest_algorithm, keys.key, data, cred.signature)


def seal_payload(
    envelope: Envelope, payload: bytes, keys: SessionKeys, random_bytes: Random
) -> tuple[Envelope, bytes]:
    """An encoded payload encrypted under the session key, and its envelope flagged so."""
    if keys.key is None:
        raise SessionFailed("the session has no key yet")
    sealed = sc.encrypt_buffer(keys.cipher, keys.key, payload, random_bytes)
    return replace(envelope, encrypted=True, message_length=len(sealed)), sealed


def open_payload(envelope: Envelope, payload: bytes, keys: SessionKeys) -> tuple[Envelope, bytes]:
    """The plaintext of an encrypted payload (``SessionCryptoError`` when it is not one)."""
    if keys.key is None:
        raise SessionFailed("the session has no key yet")
    plain = sc.decrypt_buffer(keys.cipher, keys.key, payload)
    return replace(envelope, encrypted=False, message_length=len(plain)), plain


def encode_sealed(msg: Message, keys: SessionKeys, random_bytes: Random) -> bytes:
    """Envelope + encrypted payload of ``msg``, one buffer (a TCP frame)."""
    from idnode.wire.envelope import encode_envelope

    envelope, sealed = seal_payload(msg.envelope, encode_payload(msg), keys, random_bytes)
    return encode_envelope(envelope) + sealed


# --- the client's half of a DH exchange ------------------------------------------------------


class ClientDH:
    """What a client keeps between its DH session setup and the server's answer."""

    def __init__(
        self, p: int = sc.RFC3526_GROUP14_P, g: int = sc.RFC3526_GROUP14_G, *, random_bytes=None
    ) -> None:
        kwargs = {} if random_bytes is None else {"random_bytes": random_bytes}
        self._pair = sc.DHKeyPair(p, g, **kwargs)
        self.public_key = self._pair.public.encode()  # SessionSetupRequest.public_key

    def finish(self, data: bytes, version: tuple[int, int]) -> SessionKeys:
        """The session keys from the server's SessionSetupResponse data: the cipher code
        (4 bytes), then the server's DH public key (HSJ 2.4+ layout)."""
        if len(data) < 4:
            raise SessionFailed("the server's DH answer is too short")
        cipher = int.from_bytes(data[:4], "big")
        try:
            sc.check_algorithm(cipher)
            theirs = sc.decode_dh_public(data[4:])
            key = sc.key_from_dh(self._pair.agree(theirs), cipher)
        except sc.SessionCryptoError as exc:
            raise SessionFailed(f"the server's DH answer is not usable: {exc}") from None
        return SessionKeys(mode=4, cipher=cipher, key=key, version=version)


def claimed_identity(handle: str, index: int) -> tuple[str, int] | None:
    """The identity a session setup names, or None for an anonymous session (HSJ: a null
    handle or a negative index)."""
    if not handle or index < 0:
        return None
    return handle, index


def same_identity(claimed: tuple[str, int] | None, handle: str, index: int) -> bool:
    """Whether a proven identity is the one a session setup claimed (index 0: any key)."""
    from idnode.model import handle_key

    if claimed is None:
        return False
    return handle_key(claimed[0]) == handle_key(handle) and claimed[1] in (0, index)
