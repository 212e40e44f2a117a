"""Server selection by the site's hash option, against MD5 vectors worked by hand (HSJ
``SiteInfo.getHandleHash``: last 4 digest bytes, signed big-endian, Math.abs, modulo)."""

from __future__ import annotations

import ipaddress

import pytest

from idnode.errors import InvalidValue
from idnode.hierarchy.selection import handle_hash, hash_part, server_number, servers_for
from idnode.wire import site as site_format  # where the hash lives (client.sites re-exports)
from idnode.wire.site import (
    HASH_BY_ALL,
    HASH_BY_PREFIX,
    HASH_BY_SUFFIX,
    SP_HDL_HTTP,
    SP_HDL_TCP,
    ST_ADMIN_AND_QUERY,
    ServerRecord,
    ServiceInterface,
    SiteInfo,
)

# md5("88.123")     = 32aca3b4bfe6cc10ad1690b7 e80b07b2 -> 0xe80b07b2 - 2**32 = -401930318
# md5("ABC")        = 902fbdd2b1df0c4f70b4a5d2 3525e932 -> 891676978
# md5("88.123/ABC") = fb3354f02313659ec2fbd30d 946943fa -> 0x946943fa - 2**32 -> abs
VECTORS = [
    ("88.123/abc", HASH_BY_PREFIX, 401930318),
    ("88.123/abc", HASH_BY_SUFFIX, 891676978),
    ("88.123/abc", HASH_BY_ALL, (1 << 32) - 0x946943FA),
]


@pytest.mark.parametrize(("handle", "option", "expected"), VECTORS)
def test_known_md5_vectors(handle, option, expected):
    assert handle_hash(handle, option) == expected
    for n in (1, 2, 3, 5, 7):
        assert server_number(handle, option, n) == expected % n


def test_hash_parts_are_upper_cased_and_case_insensitive():
    assert hash_part("88.123/abc", HASH_BY_PREFIX) == b"88.123"
    assert hash_part("88.123/abc", HASH_BY_SUFFIX) == b"ABC"
    assert hash_part("88.123/abc", HASH_BY_ALL) == b"88.123/ABC"
    assert hash_part("nosuffix", HASH_BY_SUFFIX) == b"NOSUFFIX"  # HSJ: no slash -> whole
    assert handle_hash("88.123/Abc", HASH_BY_ALL) == handle_hash("88.123/aBC", HASH_BY_ALL)
    # by prefix, every handle of one prefix lands on one server
    nums = {server_number(f"88.123/item-{i}", HASH_BY_PREFIX, 4) for i in range(50)}
    assert nums == {401930318 % 4}


def test_java_semantics_for_integer_min_value(monkeypatch):
    class Fake:
        def digest(self) -> bytes:
            return bytes(12) + b"\x80\x00\x00\x00"  # Integer.MIN_VALUE: Math.abs keeps it

    monkeypatch.setattr(site_format.hashlib, "md5", lambda data: Fake())
    assert handle_hash("x/y", HASH_BY_ALL) == -(1 << 31)
    assert server_number("x/y", HASH_BY_ALL, 3) == -((1 << 31) % 3)  # Java % keeps the sign


def test_bad_hash_option_and_empty_site():
    with pytest.raises(InvalidValue):
        handle_hash("a/b", 7)
    with pytest.raises(InvalidValue):
        server_number("a/b", HASH_BY_ALL, 0)
    assert servers_for(SiteInfo(servers=()), "a/b") == []


def _server(n: int, protocol: int = SP_HDL_TCP) -> ServerRecord:
    itf = ServiceInterface(ST_ADMIN_AND_QUERY, protocol, 2641)
    return ServerRecord(n, ipaddress.ip_address(f"10.0.0.{n}"), b"", (itf,))


def test_hashed_server_first_then_fallbacks_skipping_non_query_servers():
    servers = (_server(1), _server(2), _server(3))
    site = SiteInfo(hash_option=HASH_BY_SUFFIX, servers=servers)
    chosen = servers_for(site, "88.123/abc")
    assert chosen[0] is servers[891676978 % 3]
    assert sorted(s.server_id for s in chosen) == [1, 2, 3]
    # a server reachable only over HTTP is skipped but keeps the numbering
    http_only = (_server(1), _server(2, SP_HDL_HTTP), _server(3))
    site = SiteInfo(hash_option=HASH_BY_SUFFIX, servers=http_only)
    assert [s.server_id for s in servers_for(site, "88.123/abc")] == [1, 3]
