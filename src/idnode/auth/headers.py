"""HTTP ``Authorization`` headers of the Handle.Net REST API: ``Basic`` and ``Handle``.

``Basic base64(id ":" secret)`` (HSJ ``StandardHandleAuthenticator.authenticateViaBasic``):
the id is the percent-encoded identity ``300%3A0.NA%2F20.500`` (pyhandle encodes it so), the
secret the raw HS_SECKEY bytes. The decoded bytes split at the first ``:``; the id is then
percent-decoded (``+`` stays ``+``, as HSJ's ``decodeURLIgnorePlus``). An *unencoded* id
``300:0.NA/20.500`` is accepted too: its first ``:`` follows bare digits, which an encoded id
never has, and the handle then ends at the next ``:`` (so such a handle cannot contain one).
HSJ would take a bare ``handle`` without index as index 0 ("any key"); we ask for the index.

``Handle k="v", k=v, ...`` (HSJ ``HandleAuthorizationHeader``): comma-separated parameters,
values a token or a quoted string with backslash escapes, names case-insensitive. Known
names come back under HSJ's spelling (``sessionId``, ``id``, ``type``, ``alg``, ``cnonce``,
``signature``, ``salt``, ``iterations``, ``length``, ``version``, ``clientCert``,
``renegotiate``); others are ignored, as HSJ ignores them. Only ``id`` is percent-decoded.
A repeated name is refused (HSJ keeps the last; an ambiguous credential is safer refused).

Every malformed header raises ``MalformedAuthorization`` (code 404) naming what is wrong.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from idnode.auth.identity import Identity
from idnode.crypto.keys import b64decode_any
from idnode.errors import IdnodeError, MalformedAuthorization

MAX_HEADER = 16384

HANDLE_PARAMS = (
    "version",
    "sessionId",
    "id",
    "cnonce",
    "type",
    "alg",
    "signature",
    "salt",
    "iterations",
    "length",
    "clientCert",
    "renegotiate",
)
_CANONICAL = {name.lower(): name for name in HANDLE_PARAMS}

_TOKEN = r"[-A-Za-z0-9!#$%&'*+.`^_|~]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_SCHEME_RE = re.compile(r"\s*Handle\s+(.*)", re.IGNORECASE | re.DOTALL)
_PARAM_RE = re.compile(rf"\s*({_TOKEN})\s*=\s*({_TOKEN}|{_QUOTED})\s*((?:,\s*)*)", re.DOTALL)
_UNESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)


def percent_decode(text: str, field: str = "id") -> str:
    """Percent-decoding that keeps ``+`` and refuses invalid UTF-8."""
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        raise MalformedAuthorization(f"{field}: percent-encoding is not valid UTF-8") from None


def parse_basic_authorization(header: str) -> tuple[Identity, bytes]:
    """``Basic ...`` -> (identity, secret bytes)."""
    if not isinstance(header, str) or len(header) > MAX_HEADER:
        raise MalformedAuthorization("Authorization header missing or too long")
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != "basic":
        raise MalformedAuthorization("expected 'Authorization: Basic <base64>'")
    try:
        raw = b64decode_any(parts[1], "Basic credentials")
    except IdnodeError as exc:
        raise MalformedAuthorization(exc.message) from None
    colon = raw.find(b":")
    if colon < 0:
        raise MalformedAuthorization("Basic credentials have no ':' between id and secret")
    user, secret = raw[:colon], raw[colon + 1 :]
    if user.isdigit():  # unencoded "300:handle:secret"
        second = secret.find(b":")
        if second < 0:
            raise MalformedAuthorization("Basic credentials have no ':' between id and secret")
        user, secret = user + b":" + secret[:second], secret[second + 1 :]
    try:
        user_text = user.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedAuthorization("Basic user id is not valid UTF-8") from None
    ident = percent_decode(user_text, "Basic user id")
    return _identity(ident, "Basic user id"), secret


def _identity(text: str, field: str) -> Identity:
    try:
        return Identity.parse(text)
    except IdnodeError:
        raise MalformedAuthorization(
            f"{field} must be 'index:handle' (e.g. 300%3A0.NA%2F20.500), got {text!r}"
        ) from None


def parse_handle_authorization(header: str) -> dict[str, str]:
    """``Handle sessionId="...", id="300%3AP/ADMIN", ...`` -> {canonical name: value}."""
    if not isinstance(header, str) or len(header) > MAX_HEADER:
        raise MalformedAuthorization("Authorization header missing or too long")
    m = _SCHEME_RE.fullmatch(header)
    if m is None or not m.group(1).strip():
        raise MalformedAuthorization("expected 'Authorization: Handle name=\"value\", ...'")
    text = m.group(1)
    out: dict[str, str] = {}
    pos, comma = 0, True
    while pos < len(text):
        pm = _PARAM_RE.match(text, pos)
        if pm is None:
            if not text[pos:].strip():
                break
            raise MalformedAuthorization(
                f"Handle authorization: cannot parse parameters at {text[pos : pos + 20]!r}"
            )
        if not comma:
            raise MalformedAuthorization("Handle authorization: parameters need commas")
        name, value = pm.group(1), _unquote(pm.group(2))
        canonical = _CANONICAL.get(name.lower())
        if canonical is not None:
            if canonical in out:
                raise MalformedAuthorization(f"Handle authorization: {canonical} given twice")
            if canonical == "id":
                value = percent_decode(value, "id")
            out[canonical] = value
        comma = bool(pm.group(3))
        pos = pm.end()
    return out


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return _UNESCAPE_RE.sub(r"\1", value[1:-1])
    return value


def handle_identity(params: dict[str, str]) -> Identity:
    """The identity a parsed Handle header claims (its ``id``)."""
    ident = params.get("id")
    if not ident:
        raise MalformedAuthorization("Handle authorization has no id")
    return _identity(ident, "Handle authorization id")


def quote_param(value: str) -> str:
    """A header parameter value as a quoted string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
