"""REST session authentication, as the Handle.Net server's HTTP interface does it.

The flow (HSJ ``SessionsServlet`` / ``StandardHandleAuthenticator``):

1. ``POST /api/sessions`` -> ``{"sessionId": "...", "nonce": base64(server nonce)}``;
2. the client picks a client nonce ``cnonce`` and answers with
   ``PUT /api/sessions/this`` and ``Authorization: Handle sessionId="...",
   id="300%3A0.NA/20.500", type="HS_PUBKEY"|"HS_SECKEY", cnonce="<base64>", alg="SHA256",
   signature="<base64>"``.

HSJ checks that answer with the very code that checks a protocol challenge answer, the
client nonce standing in for the request digest. So the signed data is
``nonce || cnonce`` and:

* ``HS_PUBKEY``: ``signature`` is a SHA1/SHA256-with-RSA/DSA signature over it (``alg`` names
  the hash); the protocol answer is rebuilt as hash id + signature;
* ``HS_SECKEY``: ``signature`` is the MAC of ``idnode.auth.answers`` *without* the code byte
  -- ``alg`` names it: ``SHA1`` / ``SHA256`` (digest of secret || data || secret),
  ``HMAC-SHA1``, ``HMAC-SHA256``, or ``PBKDF2-HMAC-SHA1`` with its parameters in the header
  fields ``salt`` (base64), ``iterations`` and ``length`` (bits); HSJ's
  ``constructSignedResponse`` prepends the code.

Once verified, the session is bound to the identity; later requests carry only
``Authorization: Handle sessionId="..."``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from urllib.parse import quote

from idnode.auth.acl import AccessControl
from idnode.auth.answers import (
    HASH_ID_SHA1,
    HASH_ID_SHA256,
    MacCode,
    mac_code,
    make_public_key_answer,
    make_secret_key_answer,
    parse_pbkdf2_encoding,
    parse_public_key_answer,
    pbkdf2_encoding,
    verify_public_key_answer,
    verify_secret_key_answer,
)
from idnode.auth.headers import handle_identity, parse_basic_authorization, quote_param
from idnode.auth.identity import Identity
from idnode.auth.secrets import verify_plain_secret
from idnode.auth.sessions import SessionTable
from idnode.crypto.keys import PrivateKey, b64decode_any
from idnode.errors import (
    AuthenticationFailed,
    IdnodeError,
    MalformedAuthorization,
    SessionTimeout,
)
from idnode.model import HS_PUBKEY, HS_SECKEY, HandleValue
from idnode.runtime import ENTROPY, Random

REQUIRED = ("id", "cnonce", "type", "alg", "signature")
MAX_CNONCE = 1024
_PBKDF2_FIELDS = ("salt", "iterations", "length")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(params: Mapping[str, str], name: str) -> bytes:
    try:
        return b64decode_any(params[name], name)
    except IdnodeError as exc:
        raise MalformedAuthorization(f"Handle authorization {exc.message}") from None


def _int_param(params: Mapping[str, str], name: str) -> int:
    text = params[name]
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise MalformedAuthorization(f"Handle authorization {name} must be a number")
    return int(text)


def check_answer_params(params: Mapping[str, str]) -> None:
    """Refuse an incomplete or unknown-version authenticating header (HSJ's checks)."""
    version = params.get("version")
    if version is not None and version != "0":
        raise MalformedAuthorization(f"unknown Handle authorization version {version!r}")
    missing = [name for name in REQUIRED if not params.get(name)]
    if missing:
        raise MalformedAuthorization(f"Handle authorization lacks {', '.join(missing)}")
    if params["type"] not in (HS_PUBKEY, HS_SECKEY):
        raise MalformedAuthorization(
            f"Handle authorization type must be HS_PUBKEY or HS_SECKEY, got {params['type']!r}"
        )


def rest_answer_bytes(params: Mapping[str, str]) -> tuple[bytes, bytes]:
    """(cnonce, protocol answer) rebuilt from a parsed header, as HSJ's
    ``constructSignedResponse`` does; raises ``MalformedAuthorization``."""
    check_answer_params(params)
    cnonce = _unb64(params, "cnonce")
    if not cnonce or len(cnonce) > MAX_CNONCE:
        raise MalformedAuthorization(f"Handle authorization cnonce must be 1..{MAX_CNONCE} bytes")
    signature = _unb64(params, "signature")
    alg = params["alg"]
    if params["type"] == HS_PUBKEY:
        squeezed = "".join(c for c in alg.upper() if c.isalnum())
        if squeezed in ("SHA", "SHA1"):
            hash_id = HASH_ID_SHA1
        elif squeezed in ("SHA2", "SHA256"):
            hash_id = HASH_ID_SHA256
        else:
            raise MalformedAuthorization(f"unsupported HS_PUBKEY alg {alg!r}")
        answer = len(hash_id).to_bytes(4, "big") + hash_id
        return cnonce, answer + len(signature).to_bytes(4, "big") + signature
    try:
        code = mac_code(alg)
    except IdnodeError:
        raise MalformedAuthorization(f"unsupported HS_SECKEY alg {alg!r}") from None
    if code == MacCode.MD5_OLD_FORMAT:
        raise MalformedAuthorization(f"unsupported HS_SECKEY alg {alg!r}")
    if code == MacCode.PBKDF2_HMAC_SHA1 and all(params.get(n) for n in _PBKDF2_FIELDS):
        salt = _unb64(params, "salt")
        iterations = _int_param(params, "iterations")
        length = _int_param(params, "length")
        signature = pbkdf2_encoding(salt, iterations, length, signature)
    return cnonce, bytes([code]) + signature


def verify_rest_session_answer(
    params: Mapping[str, str], nonce: bytes, key_value: HandleValue | None
) -> bool:
    """Does the parsed ``Authorization: Handle`` answer verify against the server's ``nonce``
    and the identity's key value (``AccessControl.key_values(handle_identity(params))``)?

    False for a wrong answer or a key of the other type; ``MalformedAuthorization`` for a
    broken header; ``UnableToAuthenticate`` when the stored key cannot be used.
    """
    cnonce, answer = rest_answer_bytes(params)
    if key_value is None or key_value.type != params["type"]:
        return False
    if key_value.type == HS_PUBKEY:
        return verify_public_key_answer(key_value.data, nonce, cnonce, answer)
    return verify_secret_key_answer(key_value.data, nonce, cnonce, answer)


def make_rest_session_authorization(
    session_id: str,
    identity: Identity,
    nonce: bytes,
    *,
    secret: bytes | str | None = None,
    private_key: PrivateKey | None = None,
    alg: str = "SHA256",
    cnonce: bytes | None = None,
    salt: bytes | None = None,
    iterations: int | None = None,
    random_bytes: Random = ENTROPY,
) -> str:
    """The client side: the ``Authorization`` value answering a session's ``nonce``.

    Give ``private_key`` (HS_PUBKEY) or ``secret`` (HS_SECKEY). For ``PBKDF2-HMAC-SHA1``
    the salt, iterations and length go into their own fields, as HSJ expects.
    """
    if (secret is None) == (private_key is None):
        raise ValueError("give exactly one of secret and private_key")
    cnonce = bytes(random_bytes(16)) if cnonce is None else bytes(cnonce)
    fields = {"sessionId": session_id, "id": quote(str(identity), safe="/")}
    if private_key is not None:
        answer = make_public_key_answer(private_key, nonce, cnonce, alg)
        signature = parse_public_key_answer(answer)[1]
        fields.update(type=HS_PUBKEY, cnonce=_b64(cnonce), alg=alg, signature=_b64(signature))
    else:
        code = mac_code(alg)
        extra = {} if iterations is None else {"iterations": iterations}
        answer = make_secret_key_answer(
            secret, nonce, cnonce, code, salt=salt, random_bytes=random_bytes, **extra
        )
        body = answer[1:]
        fields.update(type=HS_SECKEY, cnonce=_b64(cnonce), alg=alg)
        if code == MacCode.PBKDF2_HMAC_SHA1:
            p_salt, p_iter, p_bits, mac = parse_pbkdf2_encoding(body)
            fields.update(signature=_b64(mac), salt=_b64(p_salt))
            fields.update(iterations=str(p_iter), length=str(p_bits))
        else:
            fields["signature"] = _b64(body)
    return "Handle " + ", ".join(f"{k}={quote_param(v)}" for k, v in fields.items())


async def authenticate_rest_session(
    table: SessionTable, acl: AccessControl, params: Mapping[str, str]
) -> Identity:
    """``PUT /api/sessions/this``: verify the answer in ``params`` and bind the session.

    Raises ``SessionTimeout`` for an unknown or expired ``sessionId``, ``AuthenticationFailed``
    when the answer does not verify (or the session's nonce is spent on another identity),
    ``MalformedAuthorization`` for a broken header. A session already bound to the same
    identity is accepted again without a fresh proof: its token is the credential, and HSJ
    clients re-send the same header.
    """
    session = table.by_token(params.get("sessionId", ""))
    if session is None:
        raise SessionTimeout("unknown or expired session")
    check_answer_params(params)
    identity = handle_identity(params)
    if session.identity is not None:
        if session.identity == identity:
            return identity
        raise AuthenticationFailed("session is already authenticated as another identity")
    if session.nonce is None:
        raise AuthenticationFailed("session has no pending nonce")
    key = await acl.key_values(identity)
    if not verify_rest_session_answer(params, session.nonce, key):
        raise AuthenticationFailed(f"authentication of {identity} failed")
    table.authenticate(session.id, identity)
    return identity


async def authenticate_basic(acl: AccessControl, header: str) -> Identity:
    """``Authorization: Basic``: the identity whose HS_SECKEY the presented secret matches.

    Raises ``MalformedAuthorization`` for a broken header and ``AuthenticationFailed`` when
    the key is missing, not an HS_SECKEY, or the secret does not match (one message for all,
    so a caller cannot probe which identities exist).
    """
    identity, secret = parse_basic_authorization(header)
    key = await acl.key_values(identity)
    if key is None or key.type != HS_SECKEY or not verify_plain_secret(key.data, secret):
        raise AuthenticationFailed(f"authentication of {identity} failed")
    return identity


__all__ = [
    "authenticate_basic",
    "authenticate_rest_session",
    "check_answer_params",
    "handle_identity",
    "make_rest_session_authorization",
    "rest_answer_bytes",
    "verify_rest_session_answer",
]
