"""HS_SITE value data (RFC 3651 section 3.2.2): where a handle service lives.

Wire layout, as RFC 3651 and HSJ ``Encoder.encodeSiteInfoRecord`` write it::

    Version          2 bytes   data format version, 1 (HSJ SITE_RECORD_FORMAT_VERSION)
    ProtocolVersion  2 bytes   major, minor: one byte each
    SerialNumber     2 bytes   bumped whenever the record changes
    PrimaryMask      1 byte    0x80 primary site, 0x40 multi-primary
    HashOption       1 byte    0 by prefix, 1 by suffix, 2 by whole handle
    HashFilter       UTF8-String
    Attributes       4-byte count, then name and value, each a UTF8-String
    Servers          4-byte count, then per server:
        ServerID     4 bytes
        Address      16 bytes  IPv6; an IPv4 address sits in the last 4 bytes after 12 zero
                               bytes (HSJ's ``fill16`` / ``ServerInfo.isIPv4``), not ::ffff:
        PublicKey    4-byte length + HS_PUBKEY data (may be empty)
        Interfaces   4-byte count, then per interface:
            Type     1 byte    1 admin, 2 query, 3 both, 0 out of service
            Protocol 1 byte    0 UDP, 1 TCP, 2 HTTP, 3 HTTPS
            Port     4 bytes

The REST form follows HSJ's ``SiteInfoGsonTypeAdapter``: ``version``, ``protocolVersion``
("2.10"), ``serialNumber``, ``primarySite``, ``multiPrimary``, ``hashOption`` (left out when
2), ``hashFilter`` (left out when empty), ``attributes`` ([{name, value}]) and ``servers``
([{serverId, address, publicKey: {format, value}, interfaces: [{query, admin, protocol,
port}]}]).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from idnode.crypto.keys import (
    PrivateKey,
    PublicKey,
    b64decode_any,
    decode_public_key,
    encode_public_key,
    public_key_from_jwk,
    public_key_from_pem,
    public_key_to_jwk,
)
from idnode.encoding import Reader, Writer
from idnode.errors import IdnodeError, InvalidValue
from idnode.model import handle_key
from idnode.names import prefix_part, suffix_part
from idnode.wire.admin import json_int

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SITE_DATA_FORMAT_VERSION = 1
DEFAULT_PROTOCOL_VERSION = (2, 10)

PRIMARY_SITE = 0x80
MULTI_PRIMARY = 0x40

HASH_BY_PREFIX = 0
HASH_BY_SUFFIX = 1
HASH_BY_ALL = 2

ST_OUT_OF_SERVICE = 0
ST_ADMIN = 1
ST_QUERY = 2
ST_ADMIN_AND_QUERY = 3

SP_HDL_UDP = 0
SP_HDL_TCP = 1
SP_HDL_HTTP = 2
SP_HDL_HTTPS = 3

PROTOCOL_NAMES = {SP_HDL_UDP: "UDP", SP_HDL_TCP: "TCP", SP_HDL_HTTP: "HTTP", SP_HDL_HTTPS: "HTTPS"}

# Opcodes HSJ serves only on an interface whose type allows administration (``Interface.
# canProcessMsg``): create, delete, add/remove/modify value, list handles, home/unhome, list
# homed prefixes, and its transaction-log, dump and backup operations (1000-1003). Everything
# else (resolution, get-siteinfo, challenge answers, sessions, 106) is served on any interface.
ADMIN_OPCODES = frozenset({100, 101, 102, 103, 104, 105, 300, 301, 302, 1000, 1001, 1002, 1003})
# HSJ's answer to one of them on a query-only interface: PROTOCOL_ERROR (4) with this text
NOT_AN_ADMIN_INTERFACE = "Received admin request on non-admin interface"
_PROTOCOL_CODES = {name: code for code, name in PROTOCOL_NAMES.items()}

DESCRIPTION_ATTRIBUTE = "desc"  # HSJ HSG.DESCRIPTION

_MIN_ATTRIBUTE_SIZE = 4 + 4
_MIN_INTERFACE_SIZE = 1 + 1 + 4
_MIN_SERVER_SIZE = 4 + 16 + 4 + 4


@dataclass(frozen=True, slots=True)
class ServiceInterface:
    """One way to reach a server: what it answers, over which transport, on which port."""

    service_type: int = ST_ADMIN_AND_QUERY
    protocol: int = SP_HDL_TCP
    port: int = 2641

    @property
    def query(self) -> bool:
        return bool(self.service_type & ST_QUERY)

    @property
    def admin(self) -> bool:
        return bool(self.service_type & ST_ADMIN)

    @property
    def protocol_name(self) -> str:
        return PROTOCOL_NAMES.get(self.protocol, str(self.protocol))


@dataclass(frozen=True, slots=True)
class ServerRecord:
    """One server of a site; ``public_key`` holds HS_PUBKEY bytes (``key()`` decodes them)."""

    server_id: int
    address: IPAddress
    public_key: bytes = b""
    interfaces: tuple[ServiceInterface, ...] = ()

    def key(self) -> PublicKey:
        return decode_public_key(self.public_key)

    @property
    def connect_address(self) -> IPAddress:
        """The address to open a socket to: an IPv4-mapped IPv6 address becomes IPv4."""
        if isinstance(self.address, ipaddress.IPv6Address) and self.address.ipv4_mapped:
            return self.address.ipv4_mapped
        return self.address

    def interface(self, protocol: int, *, admin: bool = False) -> ServiceInterface | None:
        """The first interface on ``protocol`` that serves queries (or admin requests)."""
        wanted = ST_ADMIN if admin else ST_QUERY
        for itf in self.interfaces:
            if itf.protocol == protocol and itf.service_type & wanted:
                return itf
        return None


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """A handle service site: its servers and how handles are spread across them."""

    version: int = SITE_DATA_FORMAT_VERSION
    protocol_version: tuple[int, int] = DEFAULT_PROTOCOL_VERSION
    serial: int = 1
    primary_mask: int = PRIMARY_SITE
    hash_option: int = HASH_BY_ALL
    hash_filter: bytes | str = ""
    attributes: tuple[tuple[str, str], ...] = ()
    servers: tuple[ServerRecord, ...] = field(default=())

    @property
    def is_primary(self) -> bool:
        return bool(self.primary_mask & PRIMARY_SITE)

    @property
    def multi_primary(self) -> bool:
        return bool(self.primary_mask & MULTI_PRIMARY)

    def attribute(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return value
        return None

    @classmethod
    def for_single_server(
        cls,
        host: str | IPAddress,
        udp_port: int | None = 2641,
        tcp_port: int = 2641,
        http_port: int | None = 8000,
        public_key: bytes | PublicKey | PrivateKey = b"",
        serial: int = 1,
        *,
        https_port: int | None = None,
        description: str | None = None,
        attributes: Iterable[tuple[str, str]] = (),
        primary: bool = True,
        multi_primary: bool = False,
        hash_option: int = HASH_BY_ALL,
        protocol_version: tuple[int, int] = DEFAULT_PROTOCOL_VERSION,
        server_id: int = 1,
    ) -> SiteInfo:
        """The site record ``idnode init`` writes: one server, like HSJ's setup does.

        Interfaces in HSJ's order: TCP (query and admin), UDP (query only: admin requests
        need a connection), HTTP (query and admin), then HTTPS when asked for.
        """
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise InvalidValue(f"site address must be an IP address, got {host!r}") from None
        itfs = [ServiceInterface(ST_ADMIN_AND_QUERY, SP_HDL_TCP, _port(tcp_port, "tcp_port"))]
        if udp_port is not None:
            itfs.append(ServiceInterface(ST_QUERY, SP_HDL_UDP, _port(udp_port, "udp_port")))
        if http_port is not None:
            port = _port(http_port, "http_port")
            itfs.append(ServiceInterface(ST_ADMIN_AND_QUERY, SP_HDL_HTTP, port))
        if https_port is not None:
            port = _port(https_port, "https_port")
            itfs.append(ServiceInterface(ST_ADMIN_AND_QUERY, SP_HDL_HTTPS, port))
        key_bytes = public_key if isinstance(public_key, bytes) else encode_public_key(public_key)
        attrs = [(DESCRIPTION_ATTRIBUTE, description)] if description is not None else []
        attrs.extend((str(k), str(v)) for k, v in attributes)
        mask = (PRIMARY_SITE if primary else 0) | (MULTI_PRIMARY if multi_primary else 0)
        return cls(
            protocol_version=protocol_version,
            serial=serial,
            primary_mask=mask,
            hash_option=hash_option,
            attributes=tuple(attrs),
            servers=(ServerRecord(server_id, address, key_bytes, tuple(itfs)),),
        )


def _port(port: int, name: str) -> int:
    if not 1 <= port <= 65535:
        raise InvalidValue(f"{name}: {port} is not a TCP/UDP port")
    return port


# --- wire ---------------------------------------------------------------------------------


def address_to_bytes(address: IPAddress) -> bytes:
    if isinstance(address, ipaddress.IPv4Address):
        return bytes(12) + address.packed
    return address.packed


def address_from_bytes(raw: bytes) -> IPAddress:
    """16 bytes -> address; 12 leading zero bytes mean IPv4, exactly as HSJ reads them."""
    if raw[:12] == bytes(12):
        return ipaddress.IPv4Address(raw[12:])
    return ipaddress.IPv6Address(raw)


def _text(value: bytes | str) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def encode_site(site: SiteInfo) -> bytes:
    _check_site(site)
    w = Writer().u16(site.version)
    w.u8(site.protocol_version[0]).u8(site.protocol_version[1])
    w.u16(site.serial).u8(site.primary_mask).u8(site.hash_option)
    w.bytes32(_text(site.hash_filter))
    w.u32(len(site.attributes))
    for name, value in site.attributes:
        w.utf8(name).utf8(value)
    w.u32(len(site.servers))
    for server in site.servers:
        w.u32(server.server_id).raw(address_to_bytes(server.address))
        w.bytes32(server.public_key).u32(len(server.interfaces))
        for itf in server.interfaces:
            w.u8(itf.service_type).u8(itf.protocol).u32(itf.port)
    return w.getvalue()


def _check_site(site: SiteInfo) -> None:
    """Refuse values that would wrap silently in a fixed-size field."""
    checks = [
        ("version", site.version, 0xFFFF),
        ("protocol_version.major", site.protocol_version[0], 0xFF),
        ("protocol_version.minor", site.protocol_version[1], 0xFF),
        ("serial", site.serial, 0xFFFF),
        ("primary_mask", site.primary_mask, 0xFF),
        ("hash_option", site.hash_option, 0xFF),
    ]
    for server in site.servers:
        if not -(1 << 31) <= server.server_id < (1 << 31):
            raise InvalidValue(f"site.server_id: {server.server_id} does not fit in 4 bytes")
        for itf in server.interfaces:
            checks += [
                ("interface.service_type", itf.service_type, 0xFF),
                ("interface.protocol", itf.protocol, 0xFF),
                ("interface.port", itf.port, 0xFFFFFFFF),
            ]
    for name, value, top in checks:
        if not 0 <= value <= top:
            raise InvalidValue(f"site.{name}: {value} out of range 0..{top}")


def _read_interface(r: Reader) -> ServiceInterface:
    service_type = r.u8("site.interface.type")
    protocol = r.u8("site.interface.protocol")
    return ServiceInterface(service_type, protocol, r.u32("site.interface.port"))


def _read_server(r: Reader) -> ServerRecord:
    server_id = r.i32("site.server.id")
    address = address_from_bytes(r.raw(16, "site.server.address"))
    public_key = r.bytes32("site.server.public_key")
    interfaces = tuple(r.sequence("site.server.interfaces", _MIN_INTERFACE_SIZE, _read_interface))
    return ServerRecord(server_id, address, public_key, interfaces)


def _read_attribute(r: Reader) -> tuple[str, str]:
    return r.utf8("site.attribute.name"), r.utf8("site.attribute.value")


def decode_site(data: bytes) -> SiteInfo:
    r = Reader(data)
    version = r.u16("site.version")
    major = r.u8("site.protocol_version.major")
    minor = r.u8("site.protocol_version.minor")
    serial = r.u16("site.serial")
    mask = r.u8("site.primary_mask")
    hash_option = r.u8("site.hash_option")
    raw_filter = r.bytes32("site.hash_filter")
    try:
        hash_filter: bytes | str = raw_filter.decode("utf-8")
    except UnicodeDecodeError:
        hash_filter = raw_filter
    attributes = tuple(r.sequence("site.attributes", _MIN_ATTRIBUTE_SIZE, _read_attribute))
    servers = tuple(r.sequence("site.servers", _MIN_SERVER_SIZE, _read_server))
    r.expect_end("site")
    return SiteInfo(
        version, (major, minor), serial, mask, hash_option, hash_filter, attributes, servers
    )


# --- REST/JSON ----------------------------------------------------------------------------


def public_key_data_to_json(data: bytes) -> dict:
    """``{"format": "key", "value": jwk}``, or base64 when the bytes are no usable key."""
    try:
        return {"format": "key", "value": public_key_to_jwk(decode_public_key(data))}
    except IdnodeError:
        return {"format": "base64", "value": base64.b64encode(data).decode("ascii")}


def public_key_data_from_json(obj: object, field: str) -> bytes:
    """HS_PUBKEY bytes from a ``key``/``base64``/``hex`` data object or a PEM string."""
    if isinstance(obj, str):
        if obj.lstrip().startswith("-----BEGIN"):
            return encode_public_key(public_key_from_pem(obj))
        raise InvalidValue(f"{field}: expected a data object or a PEM public key")
    if not isinstance(obj, dict) or not isinstance(obj.get("format"), str):
        raise InvalidValue(f"{field}: expected an object with format and value")
    fmt = obj["format"].lower()
    value = obj.get("value")
    if fmt == "key":
        if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
            return encode_public_key(public_key_from_pem(value))
        return encode_public_key(public_key_from_jwk(value, f"{field}.value"))
    if fmt == "base64":
        return b64decode_any(value, f"{field}.value")
    if fmt == "hex":
        return hex_decode(value, f"{field}.value")
    raise InvalidValue(f"{field}.format: {obj['format']!r} is not a public key format")


def hex_decode(text: object, field: str) -> bytes:
    if not isinstance(text, str):
        raise InvalidValue(f"{field}: must be a hex string")
    try:
        return binascii.unhexlify("".join(text.split()))
    except (binascii.Error, ValueError):
        raise InvalidValue(f"{field}: invalid hex") from None


def _interface_to_json(itf: ServiceInterface) -> dict:
    protocol: str | int = PROTOCOL_NAMES.get(itf.protocol, itf.protocol)
    return {"query": itf.query, "admin": itf.admin, "protocol": protocol, "port": itf.port}


def site_to_json(site: SiteInfo) -> dict:
    out: dict = {
        "version": site.version,
        "protocolVersion": f"{site.protocol_version[0]}.{site.protocol_version[1]}",
        "serialNumber": site.serial,
        "primarySite": site.is_primary,
        "multiPrimary": site.multi_primary,
    }
    if site.hash_option != HASH_BY_ALL:
        out["hashOption"] = site.hash_option
    if site.hash_filter:
        hf = site.hash_filter
        out["hashFilter"] = hf if isinstance(hf, str) else hf.decode("utf-8", "replace")
    out["attributes"] = [{"name": k, "value": v} for k, v in site.attributes]
    out["servers"] = [
        {
            "serverId": s.server_id,
            "address": str(s.address),
            "publicKey": public_key_data_to_json(s.public_key),
            "interfaces": [_interface_to_json(i) for i in s.interfaces],
        }
        for s in site.servers
    ]
    return out


def _json_bool(obj: dict, key: str, field: str, default: bool = False) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise InvalidValue(f"{field}.{key}: must be true or false")
    return value


def _json_str(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidValue(f"{field}: must be a string")
    return value


def _attributes_from_json(obj: object, field: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            if not isinstance(item, dict):
                raise InvalidValue(f"{field}[{i}]: must be an object with name and value")
            name = _json_str(item.get("name"), f"{field}[{i}].name")
            out.append((name, _json_str(item.get("value"), f"{field}[{i}].value")))
    elif isinstance(obj, dict):  # HSJ also reads {"name": "value" | ["v1", "v2"]}
        for name, value in obj.items():
            for v in value if isinstance(value, list) else [value]:
                out.append((name, _json_str(v, f"{field}.{name}")))
    else:
        raise InvalidValue(f"{field}: must be an array of {{name, value}}")
    return tuple(out)


def _interface_from_json(obj: object, field: str) -> ServiceInterface:
    if not isinstance(obj, dict):
        raise InvalidValue(f"{field}: must be an object")
    query = _json_bool(obj, "query", field)
    admin = _json_bool(obj, "admin", field)
    service_type = (ST_QUERY if query else 0) | (ST_ADMIN if admin else 0)
    raw = obj.get("protocol")
    if isinstance(raw, str) and raw.upper() in _PROTOCOL_CODES:
        protocol = _PROTOCOL_CODES[raw.upper()]
    else:
        try:
            protocol = json_int(raw, f"{field}.protocol", 0, 0xFF)
        except InvalidValue:
            raise InvalidValue(
                f"{field}.protocol: {raw!r} is not UDP, TCP, HTTP or HTTPS"
            ) from None
    port = json_int(obj.get("port"), f"{field}.port", 0, 0xFFFFFFFF)
    return ServiceInterface(service_type, protocol, port)


def _server_from_json(obj: object, field: str) -> ServerRecord:
    if not isinstance(obj, dict):
        raise InvalidValue(f"{field}: must be an object")
    server_id = json_int(obj.get("serverId", 1), f"{field}.serverId")
    raw_addr = obj.get("address")
    try:
        address = ipaddress.ip_address(_json_str(raw_addr, f"{field}.address"))
    except ValueError:
        raise InvalidValue(f"{field}.address: {raw_addr!r} is not an IP address") from None
    key = b""
    if obj.get("publicKey") is not None:
        key = public_key_data_from_json(obj["publicKey"], f"{field}.publicKey")
    itfs_raw = obj.get("interfaces", [])
    if not isinstance(itfs_raw, list):
        raise InvalidValue(f"{field}.interfaces: must be an array")
    itfs = tuple(
        _interface_from_json(item, f"{field}.interfaces[{i}]") for i, item in enumerate(itfs_raw)
    )
    return ServerRecord(server_id, address, key, itfs)


def site_from_json(obj: object, field: str = "data.value") -> SiteInfo:
    """Parse HSJ's site JSON; missing fields take HSJ's defaults."""
    if not isinstance(obj, dict):
        raise InvalidValue(f"{field}: site value must be an object")
    version = json_int(obj.get("version", SITE_DATA_FORMAT_VERSION), f"{field}.version", 0, 0xFFFF)
    proto = DEFAULT_PROTOCOL_VERSION
    if "protocolVersion" in obj:
        proto = _protocol_version(obj["protocolVersion"], f"{field}.protocolVersion")
    serial = json_int(obj.get("serialNumber", 0), f"{field}.serialNumber", 0, 0xFFFF)
    primary = _json_bool(obj, "primarySite", field)
    multi = _json_bool(obj, "multiPrimary", field)
    hash_option = json_int(obj.get("hashOption", HASH_BY_ALL), f"{field}.hashOption", 0, 0xFF)
    hash_filter = _json_str(obj.get("hashFilter", ""), f"{field}.hashFilter")
    attributes = _attributes_from_json(obj.get("attributes", []), f"{field}.attributes")
    servers_raw = obj.get("servers", [])
    if not isinstance(servers_raw, list):
        raise InvalidValue(f"{field}.servers: must be an array")
    servers = tuple(
        _server_from_json(item, f"{field}.servers[{i}]") for i, item in enumerate(servers_raw)
    )
    mask = (PRIMARY_SITE if primary else 0) | (MULTI_PRIMARY if multi else 0)
    return SiteInfo(version, proto, serial, mask, hash_option, hash_filter, attributes, servers)


def _protocol_version(raw: object, field: str) -> tuple[int, int]:
    text = _json_str(raw, field)
    major, dot, minor = text.partition(".")
    if not dot:
        raise InvalidValue(f"{field}: {text!r} is not major.minor")
    return json_int(major, field, 0, 0xFF), json_int(minor, field, 0, 0xFF)


# -- which server of a site holds a handle (RFC 3652 §3.4; HSJ ``SiteInfo``) ----------------
_INT_MIN = -(1 << 31)


def hash_part(handle: str, hash_option: int) -> bytes:
    """The upper-cased part of ``handle`` that the hash option selects (HSJ's parts: no slash
    means the whole handle is both the prefix and the suffix)."""
    if hash_option == HASH_BY_PREFIX:
        part = prefix_part(handle)
    elif hash_option == HASH_BY_SUFFIX:
        part = suffix_part(handle) if "/" in handle else handle
    elif hash_option == HASH_BY_ALL:
        part = handle
    else:
        raise InvalidValue(f"unknown site hash option {hash_option}")
    return handle_key(part).encode("utf-8")


def handle_hash(handle: str, hash_option: int) -> int:
    """HSJ ``getHandleHash``: ``Math.abs(readInt(md5, 12))`` (Integer.MIN_VALUE stays negative)."""
    digest = hashlib.md5(hash_part(handle, hash_option)).digest()
    value = int.from_bytes(digest[-4:], "big", signed=True)
    return value if value == _INT_MIN else abs(value)


def server_number(handle: str, hash_option: int, count: int) -> int:
    """HSJ ``determineServerNum``: the hash modulo the server count, Java semantics."""
    if count <= 0:
        raise InvalidValue("a site without servers answers nothing")
    h = handle_hash(handle, hash_option)
    rem = abs(h) % count
    return -rem if h < 0 else rem


__all__ = [
    "handle_hash",
    "hash_part",
    "server_number",
    "HASH_BY_ALL",
    "HASH_BY_PREFIX",
    "HASH_BY_SUFFIX",
    "MULTI_PRIMARY",
    "PRIMARY_SITE",
    "SP_HDL_HTTP",
    "SP_HDL_HTTPS",
    "SP_HDL_TCP",
    "SP_HDL_UDP",
    "ST_ADMIN",
    "ST_ADMIN_AND_QUERY",
    "ST_OUT_OF_SERVICE",
    "ST_QUERY",
    "ServerRecord",
    "ServiceInterface",
    "SiteInfo",
    "decode_site",
    "encode_site",
    "site_from_json",
    "site_to_json",
]
