"""Signed answers (RFC 3652 section 2.2.4, "message credential"), as HSJ makes and checks them.

A request with the CT (certified) flag asks the server to sign its answer with the key its
HS_SITE publishes. HSJ ``AbstractMessage.signMessage``/``verifyMessage``:

* the signature covers ``signing_input``: from protocol 2.6 the envelope's versions, session
  id, request id and session counter, then the encoded header + body (digest included);
* the credential is version 0, options 0, an empty signer handle whose index carries the
  session counter (0 outside sessions), type ``HS_SIGNED``, and a SignedInfo of the hash id
  (``SHA-256``; HSJ writes ``SHA1`` or ``SHA-256``) and the signature bytes;
* the signature algorithm follows the key: ``SHA256withRSA`` (PKCS#1 v1.5), ``SHA256withDSA``
  (DER ``r, s``), and whatever ``crypto.keys.sign`` does for the other key types, so a new
  algorithm there signs answers with no change here.

The client side refuses an answer that is unsigned, signed by a key that is not in the
server's site information, altered after signing, or (with the RD flag) not the answer to
the request it sent. Each failure raises ``AnswerNotVerified`` naming what was wrong.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from idnode.codes import OpFlag
from idnode.crypto.keys import (
    PrivateKey,
    PublicKey,
    decode_public_key,
    load_public_key_pem,
    sign,
    verify,
)
from idnode.errors import IdnodeError, InvalidValue
from idnode.model import ValueReference
from idnode.wire.bodies import digest_request
from idnode.wire.credential import (
    CREDENTIAL_OLD_SIGNED,
    CREDENTIAL_SIGNED,
    Credential,
    signing_input,
)
from idnode.wire.message import Message, encode_header_body, encode_message
from idnode.wire.site import SiteInfo, decode_site

SIGN_HASH = "SHA-256"  # the hash id written in our credentials (HSJ Common.HASH_ALG_SHA256)


class AnswerNotVerified(IdnodeError):
    """A certified answer failed verification: forged, altered, unsigned or misdirected."""


# --- server side ----------------------------------------------------------------------------


def sign_message(msg: Message, key: PrivateKey, hash_name: str = SIGN_HASH) -> Message:
    """``msg`` with an HS_SIGNED credential over its encoding (its envelope as it will be sent)."""
    counter = msg.credential.signer.index if msg.credential is not None else 0
    data = signing_input(msg.envelope, encode_header_body(msg), counter)
    credential = Credential(
        type=CREDENTIAL_SIGNED,
        digest_algorithm=hash_name,
        signature=sign(key, data, hash_name),
        signer=ValueReference("", counter),
    )
    return replace(msg, credential=credential)


def encode_signed(msg: Message, key: PrivateKey | None) -> bytes:
    """The encoded answer, signed when the request asked for it (CT echoed) and we have a key."""
    if key is not None and msg.header.flags & OpFlag.CT:
        msg = sign_message(msg, key)
    return encode_message(msg)


# --- client side ----------------------------------------------------------------------------


def verify_answer(
    answer: Message, keys: Sequence[PublicKey], request: Message | None = None
) -> None:
    """Check a certified answer against the server keys; raises ``AnswerNotVerified``.

    ``answer`` must come from ``decode_message`` (its ``header_body`` are the bytes received).
    With ``request``, the answer must carry its request id and, if the request set RD, a
    digest of exactly that request -- so a signed answer cannot be replayed to another query.
    """
    cred = answer.credential
    if cred is None:
        raise AnswerNotVerified("the answer is not signed (no credential), but it was asked to be")
    if cred.type not in (CREDENTIAL_SIGNED, CREDENTIAL_OLD_SIGNED):
        raise AnswerNotVerified(f"the answer carries a {cred.type!r} credential, not a signature")
    if answer.header_body is None:
        raise ValueError("verify a decoded answer (header_body is needed)")
    if not keys:
        raise AnswerNotVerified("no server public key to check the signature against")
    try:
        data = signing_input(answer.envelope, answer.header_body, cred.signer.index)
    except ValueError as exc:
        raise AnswerNotVerified(str(exc)) from None
    if not any(_verifies(key, cred, data) for key in keys):
        raise AnswerNotVerified(
            "the answer's signature does not verify with the server's key: "
            "it was altered or signed by another key"
        )
    if request is not None:
        _check_belongs(answer, request)


def _verifies(key: PublicKey, cred: Credential, data: bytes) -> bool:
    try:
        return verify(key, cred.signature, data, cred.digest_algorithm)
    except IdnodeError:  # unknown hash id or key type: not verified by this key
        return False


def _check_belongs(answer: Message, request: Message) -> None:
    if answer.envelope.request_id != request.envelope.request_id:
        raise AnswerNotVerified("the signed answer is for another request id")
    if not request.header.flags & OpFlag.RD:
        return
    got = answer.request_digest
    if got is None:
        raise AnswerNotVerified("the signed answer lacks the request digest that was asked for")
    if request.header_body is None:
        request = replace(request, header_body=encode_header_body(request))
    want = digest_request(request.header_body, got.algorithm)
    if not hmac.compare_digest(want.digest, got.digest):
        raise AnswerNotVerified("the signed answer's request digest is not of this request")


# --- where the keys come from -----------------------------------------------------------------


def site_keys(site: SiteInfo, host: str | None = None) -> list[PublicKey]:
    """The public keys of a site's servers; those at ``host`` only, when any is there."""
    servers = list(site.servers)
    if host is not None:
        here = [s for s in servers if str(s.connect_address) == host]
        servers = here or servers
    keys = []
    for server in servers:
        try:
            keys.append(decode_public_key(server.public_key))
        except IdnodeError:
            continue
    return keys


def load_site_keys(path: str | Path, host: str | None = None) -> list[PublicKey]:
    """Server keys from a file: HS_SITE bytes (HSJ ``siteinfo.bin``) or a public key PEM."""
    data = Path(path).read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        return [load_public_key_pem(data)]
    try:
        return site_keys(decode_site(data), host)
    except IdnodeError as exc:
        raise InvalidValue(
            f"{path}: neither site information nor a PEM public key: {exc}"
        ) from None


def keys_from_sites(sites: Iterable[SiteInfo], host: str | None = None) -> list[PublicKey]:
    return [k for site in sites for k in site_keys(site, host)]


async def fetch_site_keys(send: Any, host: str, port: int, timeout: float) -> list[PublicKey]:
    """The server's keys from its own get-siteinfo answer: trust on first use. A ``--site``
    file obtained out of band is the stronger anchor (docs/security.md)."""
    from idnode.client.resolve import siteinfo_request
    from idnode.wire.bodies import SiteInfoResponse

    reply = await send(host, port, siteinfo_request(), timeout=timeout)
    if not isinstance(reply.body, SiteInfoResponse):
        raise AnswerNotVerified(f"no site information from {host}:{port} to verify against")
    return site_keys(decode_site(reply.body.site), host)


async def certified_request(
    send: Any,
    host: str,
    port: int,
    request: Message,
    *,
    timeout: float,
    site_file: str | Path | None = None,
) -> Message:
    """Send a CT request with ``send`` (client.request_udp / request_tcp) and return the
    answer only if it verifies against the site's keys; raises ``AnswerNotVerified``."""
    if site_file is not None:
        keys = load_site_keys(site_file, host)
    else:
        keys = await fetch_site_keys(send, host, port, timeout)
    reply = await send(host, port, request, timeout=timeout)
    verify_answer(reply, keys, request)
    return reply
