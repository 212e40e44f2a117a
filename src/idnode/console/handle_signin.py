"""Console sign-in with a Handle admin identity (``index:handle`` and its secret key or
private key file), checked by the node's own challenge-response code.

The node answers its own challenge for the browser: it draws a nonce, builds the answer a
Handle REST client would send to ``PUT /api/sessions/this`` for a secret key
(``make_rest_session_authorization``, HMAC-SHA256) and checks it with
``verify_rest_session_answer`` against the identity's key value in the store, exactly as a
REST session is authenticated; with an uploaded private key it signs the nonce as a binary
protocol client answers a challenge (``answers.make_public_key_answer``) and verifies that
against the stored HS_PUBKEY, so every key kind the node takes works (RSA, DSA, Ed25519,
SM2). A secret stored hashed (``$pbkdf2-...$``) is checked as HTTP Basic checks it
(``verify_plain_secret``): its challenge would need the salt on the client side. The
secret or key is used for this one check and kept nowhere.

The session cookie then names the identity and a digest of its key value (``hs:`` +
identity + ``|`` + digest): each request re-reads the key, so replacing or removing it ends
the session, as revoking a token ends an account's. What the identity may do is what its
HS_ADMIN rights allow: it sees and changes the lifecycle of the records that name it (or
its groups) as administrator (``Lifecycle`` checks ``AccessControl.is_admin``), and nothing
of the registry's governance.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from idnode.auth.answers import make_public_key_answer, verify_public_key_answer
from idnode.auth.headers import parse_handle_authorization
from idnode.auth.identity import Identity
from idnode.auth.rest import make_rest_session_authorization, verify_rest_session_answer
from idnode.auth.secrets import is_hashed, verify_plain_secret
from idnode.crypto.keys import decode_private_key_file, private_key_from_pem
from idnode.errors import IdnodeError
from idnode.model import HS_PUBKEY, HS_SECKEY, HandleValue
from idnode.registry.accounts import HANDLE_ADMIN, Account

if TYPE_CHECKING:
    from idnode.service.node import Node

HANDLE_PREFIX = "hs:"


class SignInRefused(Exception):
    """The identity, its key or the proof did not check out (one message for all)."""


def _digest(key: HandleValue) -> str:
    return hashlib.sha256(key.type.encode() + b"\0" + key.data).hexdigest()[:32]


def session_subject(identity: Identity, key: HandleValue) -> str:
    return f"{HANDLE_PREFIX}{identity}|{_digest(key)}"


async def sign_in_with_key(
    node: Node,
    handle: str,
    index: str,
    *,
    secret: str = "",
    key_file: bytes = b"",
    passphrase: str = "",
) -> str:
    """The session subject of a proven identity; ``SignInRefused`` otherwise."""
    try:
        identity = Identity(handle.strip(), int(index))
    except (ValueError, IdnodeError):
        raise SignInRefused from None
    key = await node.admin.acl.key_values(identity)
    if key is None:
        raise SignInRefused
    nonce = node.runtime.random(32)
    random = node.runtime.random
    try:
        if key.type == HS_SECKEY and secret:
            if is_hashed(key.data):
                ok = verify_plain_secret(key.data, secret.encode("utf-8"))
            else:
                header = make_rest_session_authorization(
                    "console", identity, nonce, secret=secret.encode("utf-8"),
                    alg="HMAC-SHA256", random_bytes=random,
                )  # fmt: skip
                ok = verify_rest_session_answer(_params(header), nonce, key)
        elif key.type == HS_PUBKEY and key_file:
            private = (
                private_key_from_pem(key_file, passphrase or None)
                if key_file.lstrip().startswith(b"-----BEGIN")
                else decode_private_key_file(key_file, passphrase or None)
            )
            # the binary protocol's answer (nonce || digest signed), not the REST header's:
            # it takes every key kind the node accepts (Ed25519 and SM2 included), the
            # REST form only SHA-1/SHA-256 signatures
            digest = random(32)
            answer = make_public_key_answer(private, nonce, digest)
            ok = verify_public_key_answer(key.data, nonce, digest, answer)
        else:
            ok = False
    except (IdnodeError, ValueError, TypeError):
        ok = False
    if not ok:
        raise SignInRefused
    return session_subject(identity, key)


def _params(header: str) -> dict[str, str]:
    return parse_handle_authorization(header)


async def handle_account(node: Node, subject: str) -> Account | None:
    """The console's account of a session subject, while the identity's key is unchanged."""
    text, _, digest = subject[len(HANDLE_PREFIX) :].rpartition("|")
    try:
        identity = Identity.parse(text)
    except (IdnodeError, ValueError):
        return None
    key = await node.admin.acl.key_values(identity)
    if key is None or _digest(key) != digest:
        return None
    return Account(0, str(identity), HANDLE_ADMIN, None, identity, None)


__all__ = ["HANDLE_PREFIX", "SignInRefused", "handle_account", "sign_in_with_key"]
