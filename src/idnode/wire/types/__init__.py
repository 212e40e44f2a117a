"""The one registry of typed handle values: name -> ``ValueType``, as dnspython keeps one
table of rdata types. Every path that needs to know what a type means asks here:

* writes: ``validate`` (``idnode.service.validate.check_record``, which every write path --
  wire, REST, bulk load -- calls, and ``idnode.wire.json.value_from_json``), so a value is
  refused with the same response code and message whichever way it arrives;
* the REST API: ``to_json`` / ``from_json``, the ``data`` member of a value
  (``idnode.wire.json`` builds whole values on them);
* resolution: ``carries_site`` / ``names_service_handle`` (``idnode.hierarchy.resolver``).

Registered: HS_ADMIN, HS_SITE, HS_SITE.PREFIX, HS_NA_DELEGATE, HS_VLIST, HS_PUBKEY, HS_SECKEY,
HS_SERV, HS_ALIAS and 10320/loc, one module each (``base.ValueType`` says what a module
declares). The record layouts that half the code base imports -- ``AdminRecord``, ``SiteInfo``,
the vlist codec -- stay in ``idnode.wire.admin``, ``site`` and ``vlist``; the type modules bind
them to a name, a write rule, a JSON form and a role. Any other type is opaque data: stored as
given, shown as ``string`` or ``base64``. Names match case-insensitively (the REST form always
did; the write check used to match exactly, so ``hs_admin`` garbage got in over the wire).

Classification (RFC 3651 section 3.2, RFC 3652 service referral, HSJ ``hdllib.Common``):

* site data -- the value *is* an HS_SITE record: HS_SITE (``Role.SITE``; HSJ
  ``SITE_INFO_TYPES``), HS_SITE.PREFIX and HS_NA_DELEGATE (``Role.PREFIX_SITE``; HSJ
  ``DERIVED_PREFIX_SITE_INFO_TYPES``, where HS_NA_DELEGATE is the legacy name of
  HS_SITE.PREFIX -- see ``hs_na_delegate``);
* service handles -- the value *names* a handle whose site values serve the prefix: HS_SERV
  (HSJ ``SERVICE_HANDLE_TYPES``). HS_NA_DELEGATE is not one: its data is a site record, and
  reading it as a handle name (as the resolver once did) resolves garbage.

HSJ's HS_SITE.6 and HS_SERV.PREFIX are not registered: idnode neither writes nor follows them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from idnode.crypto.keys import b64decode_any
from idnode.errors import InvalidValue
from idnode.model import HandleValue
from idnode.wire.site import hex_decode
from idnode.wire.types import (
    hs_admin,
    hs_alias,
    hs_na_delegate,
    hs_pubkey,
    hs_seckey,
    hs_serv,
    hs_site,
    hs_vlist,
    loc,
)
from idnode.wire.types.base import Role, ValueType, looks_like_text, plain_json

TYPES: tuple[ValueType[Any], ...] = (
    hs_admin.TYPE,
    hs_site.TYPE,
    hs_site.PREFIX_TYPE,
    hs_na_delegate.TYPE,
    hs_vlist.TYPE,
    hs_pubkey.TYPE,
    hs_seckey.TYPE,
    hs_serv.TYPE,
    hs_alias.TYPE,
    loc.TYPE,
)
_BY_NAME: dict[str, ValueType[Any]] = {t.name.upper(): t for t in TYPES}
# What a ``{"format": ...}`` object is read as; several types share "site".
_BY_FORMAT: dict[str, ValueType[Any]] = {
    "admin": hs_admin.TYPE,
    "vlist": hs_vlist.TYPE,
    "site": hs_site.TYPE,
    "key": hs_pubkey.TYPE,
}
_FORMATS = "string, base64, hex, admin, vlist, site or key"


def lookup(type_name: str) -> ValueType[Any] | None:
    """The registered type of that name (any case), or None for opaque data."""
    return _BY_NAME.get(type_name.upper())


def role(type_name: str) -> Role:
    found = lookup(type_name)
    return Role.DATA if found is None else found.role


def _of_role(*roles: Role) -> frozenset[str]:
    return frozenset(t.name for t in TYPES if t.role in roles)


SITE_TYPES = _of_role(Role.SITE, Role.PREFIX_SITE)
PREFIX_SITE_TYPES = _of_role(Role.PREFIX_SITE)
SERVICE_HANDLE_TYPES = _of_role(Role.SERVICE_HANDLE)


def carries_site(type_name: str) -> bool:
    """True when a value of this type holds an HS_SITE record (``SITE_TYPES``)."""
    return role(type_name) in (Role.SITE, Role.PREFIX_SITE)


def names_service_handle(type_name: str) -> bool:
    """True when a value of this type names a service handle (``SERVICE_HANDLE_TYPES``)."""
    return role(type_name) is Role.SERVICE_HANDLE


# --- validation ---------------------------------------------------------------------------


def check_data(type_name: str, data: bytes, where: str = "data") -> None:
    """Refuse ``data`` that breaks the type's write rule: ``InvalidValue("<where>: not a valid
    <TYPE>: <rule>")``. Opaque types always pass."""
    found = lookup(type_name)
    if found is None:
        return
    try:
        found.validate(data)
    except InvalidValue as exc:
        raise InvalidValue(f"{where}: not a valid {found.name}: {exc.message}") from None


def validate(value: HandleValue) -> None:
    """The typed check of one value, message ``value <index>: not a valid <TYPE>: <rule>``.

    The one check every write path runs, so wire and REST refuse alike."""
    check_data(value.type, value.data, f"value {value.index}")


# --- the REST ``data`` member -------------------------------------------------------------


def to_json(value: HandleValue) -> dict[str, Any]:
    """The REST ``data`` object of a value (HSJ ``GsonUtility.serializeData``): the type's own
    form when it has one and the data decodes, else ``string`` for text, ``base64`` else."""
    found = lookup(value.type)
    typed = found.to_json(value.data) if found is not None else None
    return typed if typed is not None else plain_json(value.data)


def data_to_json(type_name: str) -> Callable[[bytes], dict[str, Any]]:
    """``to_json`` of a value of ``type_name`` as a function of its data alone, the type
    looked up once (a bulk load's layout converts many values of one type)."""
    found = lookup(type_name)
    if found is None:
        return plain_json

    def convert(data: bytes) -> dict[str, Any]:
        typed = found.to_json(data)
        return typed if typed is not None else plain_json(data)

    return convert


def data_from_json(data: object, field: str = "data") -> bytes:
    """Bytes from a REST ``data`` member, by its format alone (no type rule applied).

    Accepts the bare string pyhandle sends, and ``{"format": f, "value": v}`` for f in
    string, base64 (either alphabet, padding optional), hex, admin, vlist, site and key
    (a JWK or a PEM string). ``InvalidValue`` names the offending member."""
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
    kind = fmt.lower()
    if kind == "string":
        if not isinstance(value, str):
            raise InvalidValue(f"{where}: must be a string")
        return value.encode("utf-8")
    if kind == "base64":
        return b64decode_any(value, where)
    if kind == "hex":
        return hex_decode(value, where)
    typed = _BY_FORMAT.get(kind)
    if typed is None:
        raise InvalidValue(f"{field}.format: unknown format {fmt!r}; expected {_FORMATS}")
    return typed.from_json_value(value, where)


def from_json(type_name: str, data: object, field: str = "data") -> bytes:
    """``data_from_json``, then the type's write rule (``check_data``): a client that sends
    an HS_ADMIN as a plain string learns it at once, not at the next login."""
    raw = data_from_json(data, field)
    check_data(type_name, raw, field)
    return raw


__all__ = [
    "PREFIX_SITE_TYPES",
    "SERVICE_HANDLE_TYPES",
    "SITE_TYPES",
    "TYPES",
    "Role",
    "ValueType",
    "carries_site",
    "check_data",
    "data_from_json",
    "from_json",
    "looks_like_text",
    "lookup",
    "names_service_handle",
    "role",
    "to_json",
    "validate",
]
