"""The data of every handle value type, and its Handle.Net REST/JSON ``data`` object.

Simple layouts live here; the structured ones have their own modules (``admin``, ``site``,
``vlist``, ``idnode.crypto.keys`` for HS_PUBKEY):

* HS_SERV, HS_ALIAS: the target handle as raw UTF-8, no length prefix (RFC 3651 3.2.3, 3.2.6).
* HS_SECKEY: the secret as raw bytes; HSJ can store the lowercase hex SHA-1 of it instead.
* Anything else (URL, EMAIL, DESC, ...): opaque bytes, usually UTF-8 text.

``describe_value`` mirrors HSJ's ``GsonUtility.serializeData``: typed values become
``{"format": "admin"|"vlist"|"site"|"key", "value": ...}`` when their data decodes and fall
back to ``{"format": "string"}`` for text or ``{"format": "base64"}`` for binary.
``value_data_from_json`` is the reverse (``deserializeData``), also accepting the bare string
pyhandle sends and ``{"format": "hex"}``.
"""

from __future__ import annotations

import base64
import hashlib

from idnode.crypto.keys import b64decode_any, decode_public_key, public_key_to_jwk
from idnode.errors import IdnodeError, InvalidValue, MalformedMessage
from idnode.model import (
    HS_ADMIN,
    HS_NA_DELEGATE,
    HS_PUBKEY,
    HS_SITE,
    HS_SITE_6,
    HS_VLIST,
    HandleValue,
)
from idnode.wire.admin import admin_from_json, admin_to_json, decode_admin, encode_admin
from idnode.wire.site import (
    decode_site,
    encode_site,
    hex_decode,
    public_key_data_from_json,
    site_from_json,
    site_to_json,
)
from idnode.wire.vlist import decode_vlist, encode_vlist, vlist_from_json, vlist_to_json

SITE_TYPES = frozenset({HS_SITE, HS_SITE_6, HS_NA_DELEGATE})

_ALLOWED_CONTROLS = frozenset("\t\n\r")


# --- HS_SERV / HS_ALIAS -------------------------------------------------------------------


def encode_handle_ref(handle: str) -> bytes:
    """HS_SERV / HS_ALIAS data: the handle's UTF-8 bytes, nothing else."""
    if not handle:
        raise InvalidValue("referenced handle must not be empty")
    return handle.encode("utf-8")


def decode_handle_ref(data: bytes) -> str:
    if not data:
        raise MalformedMessage("empty handle reference", field="value.data")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedMessage(f"invalid UTF-8 at byte {exc.start}", field="value.data") from None


encode_serv = encode_alias = encode_handle_ref
decode_serv = decode_alias = decode_handle_ref


# --- HS_SECKEY ----------------------------------------------------------------------------


def encode_secret_key(secret: bytes | str, *, hashed: bool = False) -> bytes:
    """HS_SECKEY data. ``hashed`` stores lowercase hex SHA-1 of the secret, as HSJ's
    ``Encoder.encodeSecretKey(secret, true)`` does, so the value never holds the secret."""
    raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if hashed:
        return hashlib.sha1(raw).hexdigest().encode("ascii")
    return raw


def decode_secret_key(data: bytes) -> bytes:
    return bytes(data)


# --- JSON ---------------------------------------------------------------------------------


def looks_like_text(data: bytes) -> bool:
    """Valid UTF-8 with no control characters but tab, CR and LF."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any((c < " " and c not in _ALLOWED_CONTROLS) or c == "\x7f" for c in text)


def _typed_json(type_: str, data: bytes) -> dict | None:
    t = type_.upper()
    try:
        if t == HS_ADMIN:
            return {"format": "admin", "value": admin_to_json(decode_admin(data))}
        if t == HS_VLIST:
            return {"format": "vlist", "value": vlist_to_json(decode_vlist(data))}
        if t in SITE_TYPES:
            return {"format": "site", "value": site_to_json(decode_site(data))}
        if t == HS_PUBKEY:
            return {"format": "key", "value": public_key_to_jwk(decode_public_key(data))}
    except IdnodeError:
        return None  # undecodable typed data is shown raw, as HSJ does
    return None


def describe_value(v: HandleValue) -> dict:
    """The REST ``data`` object of a value."""
    typed = _typed_json(v.type, v.data)
    if typed is not None:
        return typed
    if looks_like_text(v.data):
        return {"format": "string", "value": v.data.decode("utf-8")}
    return {"format": "base64", "value": base64.b64encode(v.data).decode("ascii")}


_STRUCTURED = {
    HS_ADMIN: ("HS_ADMIN", decode_admin),
    HS_VLIST: ("HS_VLIST", decode_vlist),
    HS_SITE: ("HS_SITE", decode_site),
    HS_SITE_6: ("HS_SITE", decode_site),
    HS_NA_DELEGATE: ("HS_SITE", decode_site),
}


def value_data_from_json(type_: str, data: object, field: str = "data") -> bytes:
    """Raw value bytes from a REST ``data`` member; ``InvalidValue`` names the bad field.

    Structured types (HS_ADMIN, HS_VLIST, HS_SITE*) must end up as data that decodes, so a
    client that sends an admin as a plain string learns it at once, not at the next login.
    """
    raw = _data_from_json(data, field)
    check = _STRUCTURED.get(type_.upper())
    if check is not None:
        name, decoder = check
        try:
            decoder(raw)
        except MalformedMessage as exc:
            raise InvalidValue(f"{field}: not a valid {name} record ({exc.message})") from None
    return raw


def _data_from_json(data: object, field: str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if not isinstance(data, dict):
        raise InvalidValue(f"{field}: must be a string or an object with format and value")
    fmt = data.get("format")
    if not isinstance(fmt, str):
        raise InvalidValue(f"{field}.format: must be a string")
    if "value" not in data:
        raise InvalidValue(f"{field}.value: missing")
    value = data["value"]
    where = f"{field}.value"
    match fmt.lower():
        case "string":
            if not isinstance(value, str):
                raise InvalidValue(f"{where}: must be a string")
            return value.encode("utf-8")
        case "base64":
            return b64decode_any(value, where)
        case "hex":
            return hex_decode(value, where)
        case "admin":
            return encode_admin(admin_from_json(value, where))
        case "vlist":
            return encode_vlist(vlist_from_json(value, where))
        case "site":
            return encode_site(site_from_json(value, where))
        case "key":
            return public_key_data_from_json(data, field)
    raise InvalidValue(
        f"{field}.format: unknown format {fmt!r}; expected string, base64, hex, admin, vlist, "
        "site or key"
    )


__all__ = [
    "decode_alias",
    "decode_handle_ref",
    "decode_secret_key",
    "decode_serv",
    "describe_value",
    "encode_alias",
    "encode_handle_ref",
    "encode_secret_key",
    "encode_serv",
    "looks_like_text",
    "value_data_from_json",
]
