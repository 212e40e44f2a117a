"""HS_SITE data: RFC 3651 3.2.2 / HSJ Encoder.encodeSiteInfoRecord vectors, fuzzing, JSON."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idnode.crypto.keys import encode_public_key, generate_key
from idnode.errors import InvalidValue, MalformedMessage
from idnode.wire.site import (
    HASH_BY_ALL,
    HASH_BY_PREFIX,
    MULTI_PRIMARY,
    PRIMARY_SITE,
    SP_HDL_HTTP,
    SP_HDL_HTTPS,
    SP_HDL_TCP,
    SP_HDL_UDP,
    ST_ADMIN_AND_QUERY,
    ST_QUERY,
    ServerRecord,
    ServiceInterface,
    SiteInfo,
    decode_site,
    encode_site,
    site_from_json,
    site_to_json,
)

VECTOR = bytes.fromhex(
    "0001"  # data format version 1
    "020a"  # protocol version 2.10
    "0005"  # serial number 5
    "80"  # primary mask: PRIMARY_SITE
    "02"  # hash option: by whole handle
    "00000000"  # hash filter: empty UTF8-String
    "00000001"  # one attribute
    "00000004"  # attribute name: 4 bytes
    "64657363"  # "desc"
    "00000004"  # attribute value: 4 bytes
    "74657374"  # "test"
    "00000001"  # one server
    "00000001"  # server id 1
    "000000000000000000000000"  # 12 zero bytes: an IPv4 address follows
    "c0000201"  # 192.0.2.1
    "00000003"  # public key record: 3 bytes
    "010203"  # (opaque here)
    "00000002"  # two interfaces
    "03"  # admin and query
    "01"  # TCP
    "00000a51"  # port 2641
    "02"  # query only
    "00"  # UDP
    "00000a51"  # port 2641
)
VECTOR_SITE = SiteInfo(
    version=1,
    protocol_version=(2, 10),
    serial=5,
    primary_mask=PRIMARY_SITE,
    hash_option=HASH_BY_ALL,
    hash_filter="",
    attributes=(("desc", "test"),),
    servers=(
        ServerRecord(
            1,
            ipaddress.IPv4Address("192.0.2.1"),
            b"\x01\x02\x03",
            (
                ServiceInterface(ST_ADMIN_AND_QUERY, SP_HDL_TCP, 2641),
                ServiceInterface(ST_QUERY, SP_HDL_UDP, 2641),
            ),
        ),
    ),
)


@pytest.fixture(scope="module")
def rsa_key():
    return generate_key("rsa", 1024)


def test_vector_decodes() -> None:
    site = decode_site(VECTOR)
    assert site == VECTOR_SITE
    assert site.is_primary and not site.multi_primary
    assert site.attribute("desc") == "test" and site.attribute("nope") is None
    itf = site.servers[0].interfaces[0]
    assert itf.query and itf.admin and itf.protocol_name == "TCP"
    udp = site.servers[0].interfaces[1]
    assert udp.query and not udp.admin and udp.protocol_name == "UDP"


def test_vector_encodes_byte_for_byte() -> None:
    assert encode_site(VECTOR_SITE) == VECTOR


def test_ipv6_address_kept_in_16_bytes() -> None:
    addr = ipaddress.IPv6Address("2001:db8::1")
    site = SiteInfo(servers=(ServerRecord(7, addr),))
    data = encode_site(site)
    assert addr.packed in data
    assert decode_site(data).servers[0].address == addr


def test_ipv4_mapped_stays_ipv6_but_connects_over_ipv4() -> None:
    mapped = ipaddress.IPv6Address("::ffff:192.0.2.9")
    server = decode_site(encode_site(SiteInfo(servers=(ServerRecord(1, mapped),)))).servers[0]
    assert server.address == mapped
    assert server.connect_address == ipaddress.IPv4Address("192.0.2.9")


def test_multi_primary_and_hash_filter() -> None:
    site = SiteInfo(primary_mask=PRIMARY_SITE | MULTI_PRIMARY, hash_filter="20.500")
    data = encode_site(site)
    assert data[6] == 0xC0
    assert data[8:18] == b"\x00\x00\x00\x0620.500"
    back = decode_site(data)
    assert back.is_primary and back.multi_primary and back.hash_filter == "20.500"


def test_binary_hash_filter_kept_as_bytes() -> None:
    site = SiteInfo(hash_filter=b"\xff\x00")
    assert decode_site(encode_site(site)).hash_filter == b"\xff\x00"


@pytest.mark.parametrize("cut", range(len(VECTOR)))
def test_truncated_raises_malformed(cut: int) -> None:
    with pytest.raises(MalformedMessage):
        decode_site(VECTOR[:cut])


def test_trailing_bytes_rejected() -> None:
    with pytest.raises(MalformedMessage):
        decode_site(VECTOR + b"\x00")


def test_absurd_server_count_rejected_without_allocating() -> None:
    head = VECTOR[: VECTOR.index(bytes.fromhex("00000001000000010000"))]
    with pytest.raises(MalformedMessage):
        decode_site(head + b"\x7f\xff\xff\xff")


def test_invalid_utf8_attribute() -> None:
    bad = VECTOR.replace(bytes.fromhex("64657363"), bytes.fromhex("64c32863"))
    with pytest.raises(MalformedMessage):
        decode_site(bad)


@pytest.mark.parametrize(
    "site",
    [
        SiteInfo(serial=70000),
        SiteInfo(version=-1),
        SiteInfo(protocol_version=(256, 0)),
        SiteInfo(primary_mask=0x100),
        SiteInfo(servers=(ServerRecord(2**31, ipaddress.IPv4Address("1.2.3.4")),)),
        SiteInfo(
            servers=(
                ServerRecord(
                    1, ipaddress.IPv4Address("1.2.3.4"), b"", (ServiceInterface(3, 1, 2**32),)
                ),
            )
        ),
    ],
)
def test_encode_refuses_values_that_would_wrap(site: SiteInfo) -> None:
    with pytest.raises(InvalidValue):
        encode_site(site)


# --- property tests -----------------------------------------------------------------------

ipv4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
# addresses whose first 12 bytes are zero read back as IPv4 (HSJ's rule), so keep them out
ipv6 = st.integers(2**96, 2**128 - 1).map(ipaddress.IPv6Address)
u8 = st.integers(0, 255)
interfaces = st.builds(ServiceInterface, u8, u8, st.integers(0, 2**32 - 1))
servers = st.builds(
    ServerRecord,
    st.integers(-(2**31), 2**31 - 1),
    ipv4 | ipv6,
    st.binary(max_size=40),
    st.lists(interfaces, max_size=4).map(tuple),
)
sites = st.builds(
    SiteInfo,
    st.integers(0, 0xFFFF),
    st.tuples(u8, u8),
    st.integers(0, 0xFFFF),
    u8,
    u8,
    st.text(max_size=10),
    st.lists(st.tuples(st.text(max_size=10), st.text(max_size=20)), max_size=3).map(tuple),
    st.lists(servers, max_size=3).map(tuple),
)


@given(sites)
def test_round_trip(site: SiteInfo) -> None:
    assert decode_site(encode_site(site)) == site


@given(st.binary(max_size=200))
def test_random_bytes_only_malformed(data: bytes) -> None:
    try:
        decode_site(data)
    except MalformedMessage:
        pass


@given(st.data())
def test_mutated_vector_only_malformed(data: st.DataObject) -> None:
    buf = bytearray(VECTOR)
    for _ in range(data.draw(st.integers(1, 4))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(u8)
    try:
        decode_site(bytes(buf))
    except MalformedMessage:
        pass


# --- for_single_server --------------------------------------------------------------------


def test_for_single_server_like_hsj_setup(rsa_key) -> None:
    site = SiteInfo.for_single_server(
        "192.0.2.1", 2641, 2641, 8000, rsa_key, serial=3, description="Test site"
    )
    assert site.serial == 3 and site.is_primary and not site.multi_primary
    assert site.hash_option == HASH_BY_ALL
    assert site.attributes == (("desc", "Test site"),)
    (server,) = site.servers
    assert server.server_id == 1
    assert server.address == ipaddress.IPv4Address("192.0.2.1")
    assert server.public_key == encode_public_key(rsa_key)
    assert server.key().public_numbers() == rsa_key.public_key().public_numbers()
    assert server.interfaces == (
        ServiceInterface(ST_ADMIN_AND_QUERY, SP_HDL_TCP, 2641),
        ServiceInterface(ST_QUERY, SP_HDL_UDP, 2641),
        ServiceInterface(ST_ADMIN_AND_QUERY, SP_HDL_HTTP, 8000),
    )
    assert server.interface(SP_HDL_UDP) is not None
    assert server.interface(SP_HDL_UDP, admin=True) is None
    assert decode_site(encode_site(site)) == site


def test_for_single_server_options() -> None:
    site = SiteInfo.for_single_server(
        "::1",
        udp_port=None,
        tcp_port=2641,
        http_port=None,
        https_port=8443,
        attributes=[("alt_addr.1", "10.0.0.1")],
        primary=False,
    )
    assert not site.is_primary
    assert [i.protocol for i in site.servers[0].interfaces] == [SP_HDL_TCP, SP_HDL_HTTPS]
    assert site.attributes == (("alt_addr.1", "10.0.0.1"),)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"host": "handle.example.org"},
        {"host": "127.0.0.1", "tcp_port": 0},
        {"host": "127.0.0.1", "udp_port": 70000},
    ],
)
def test_for_single_server_rejects_bad_input(kwargs: dict) -> None:
    with pytest.raises(InvalidValue):
        SiteInfo.for_single_server(**kwargs)


# --- JSON ---------------------------------------------------------------------------------


def test_json_shape_matches_hsj() -> None:
    assert site_to_json(VECTOR_SITE) == {
        "version": 1,
        "protocolVersion": "2.10",
        "serialNumber": 5,
        "primarySite": True,
        "multiPrimary": False,
        "attributes": [{"name": "desc", "value": "test"}],
        "servers": [
            {
                "serverId": 1,
                "address": "192.0.2.1",
                "publicKey": {"format": "base64", "value": "AQID"},  # not a usable key
                "interfaces": [
                    {"query": True, "admin": True, "protocol": "TCP", "port": 2641},
                    {"query": True, "admin": False, "protocol": "UDP", "port": 2641},
                ],
            }
        ],
    }


def test_json_hash_option_only_when_not_default() -> None:
    obj = site_to_json(SiteInfo(hash_option=HASH_BY_PREFIX, hash_filter="x"))
    assert obj["hashOption"] == 0 and obj["hashFilter"] == "x"


def test_json_round_trip_with_real_key(rsa_key) -> None:
    site = SiteInfo.for_single_server("2001:db8::5", public_key=rsa_key, https_port=443)
    obj = site_to_json(site)
    assert obj["servers"][0]["publicKey"]["format"] == "key"
    assert obj["servers"][0]["publicKey"]["value"]["kty"] == "RSA"
    assert site_from_json(obj) == site


def test_json_round_trip_of_vector() -> None:
    assert site_from_json(site_to_json(VECTOR_SITE)) == VECTOR_SITE


def test_json_accepts_hsj_variants() -> None:
    site = site_from_json(
        {
            "serialNumber": "9",
            "primarySite": True,
            "attributes": {"desc": "x", "alt_addr.1": ["10.0.0.1"]},
            "servers": [
                {
                    "address": "10.0.0.2",
                    "publicKey": {"format": "hex", "value": "0102"},
                    "interfaces": [{"query": True, "protocol": 1, "port": "2641"}],
                }
            ],
        }
    )
    assert site.serial == 9 and site.protocol_version == (2, 10)
    assert site.attributes == (("desc", "x"), ("alt_addr.1", "10.0.0.1"))
    assert site.servers[0].server_id == 1 and site.servers[0].public_key == b"\x01\x02"
    assert site.servers[0].interfaces == (ServiceInterface(ST_QUERY, SP_HDL_TCP, 2641),)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"servers": {}}, "data.value.servers"),
        ({"primarySite": "yes"}, "data.value.primarySite"),
        ({"protocolVersion": "2"}, "data.value.protocolVersion"),
        ({"serialNumber": 70000}, "data.value.serialNumber"),
        ({"attributes": [{"name": "a"}]}, "data.value.attributes[0].value"),
        ({"servers": [{"address": "handle.net"}]}, "data.value.servers[0].address"),
        (
            {"servers": [{"address": "1.2.3.4", "interfaces": [{"protocol": "FTP", "port": 1}]}]},
            "data.value.servers[0].interfaces[0].protocol",
        ),
        (
            {"servers": [{"address": "1.2.3.4", "interfaces": [{"protocol": "TCP"}]}]},
            "data.value.servers[0].interfaces[0].port",
        ),
        (
            {"servers": [{"address": "1.2.3.4", "publicKey": {"format": "admin", "value": {}}}]},
            "data.value.servers[0].publicKey.format",
        ),
    ],
)
def test_json_bad_shapes_name_the_field(patch: dict, field: str) -> None:
    obj = site_to_json(VECTOR_SITE) | patch
    with pytest.raises(InvalidValue) as info:
        site_from_json(obj)
    assert field in info.value.message


@settings(max_examples=50)
@given(sites)
def test_json_round_trip_property(site: SiteInfo) -> None:
    # JSON carries flags, not the raw mask, and interface types as two booleans
    site = SiteInfo(
        site.version,
        site.protocol_version,
        site.serial,
        site.primary_mask & (PRIMARY_SITE | MULTI_PRIMARY),
        site.hash_option,
        site.hash_filter,
        site.attributes,
        tuple(
            ServerRecord(
                s.server_id,
                s.address,
                s.public_key,
                tuple(
                    ServiceInterface(i.service_type & 3, i.protocol, i.port) for i in s.interfaces
                ),
            )
            for s in site.servers
        ),
    )
    assert site_from_json(site_to_json(site)) == site
