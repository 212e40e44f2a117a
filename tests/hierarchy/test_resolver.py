"""Global resolution: the prefix walk, referrals, aliases, TTLs, loops, bounds, and upstreams
that answer garbage or nothing."""

from __future__ import annotations

import asyncio

import pytest

from idnode.codes import ResponseCode, TTLType
from idnode.errors import HandleNotFound
from idnode.hierarchy.cache import TTLCache
from idnode.hierarchy.resolver import (
    MAX_ALIAS_CHAIN,
    GlobalResolver,
    RecursionBound,
    ReferralLoop,
    UpstreamFailed,
    load_root_info,
    network_transport,
)
from idnode.model import HS_ALIAS, HS_SERV, URL, HandleValue
from idnode.runtime import ManualClock
from idnode.wire.site import SiteInfo, encode_site, site_to_json
from tests.hierarchy.fakenet import FakeNet, site, site_value

ROOT, TOP, SEC, ENT = 1, 2, 3, 4


def tree() -> FakeNet:
    net = FakeNet()
    net.delegate(ROOT, "88", TOP)
    net.delegate(TOP, "88.123", SEC)
    net.delegate(SEC, "88.123.4567", ENT)
    net.add(ENT, "88.123.4567/part-1", [HandleValue(1, URL, b"https://x/1", ttl=300)])
    net.add(SEC, "88.123/lot-1", [HandleValue(1, URL, b"https://x/lot", ttl=60)])
    return net


def resolver(net: FakeNet, **kw) -> GlobalResolver:
    kw.setdefault("wall", ManualClock())
    return GlobalResolver([site(ROOT)], transport=net.transport, **kw)


async def test_walks_prefix_handles_from_the_root():
    net = tree()
    answer = await resolver(net).resolve("88.123.4567/part-1")
    assert answer.values[0].data == b"https://x/1"
    assert answer.ttl == 300
    assert net.log == [
        (ROOT, "0.NA/88"),
        (TOP, "0.NA/88.123"),
        (SEC, "0.NA/88.123.4567"),
        (ENT, "88.123.4567/part-1"),
    ]


async def test_a_prefix_not_delegated_further_is_served_where_the_walk_stopped():
    net = tree()
    answer = await resolver(net).resolve("88.123/lot-1")
    assert answer.values[0].data == b"https://x/lot"
    assert net.log[-1] == (SEC, "88.123/lot-1")
    with pytest.raises(HandleNotFound):
        await resolver(net).resolve("88.123/nope")


async def test_prefix_handles_resolve_at_the_parent():
    net = tree()
    answer = await resolver(net).resolve("0.NA/88.123")
    assert answer.values[0].type == "HS_SITE"
    assert net.log[-1] == (TOP, "0.NA/88.123")


async def test_site_information_is_cached_by_ttl():
    now = [1000.0]
    net = tree()
    net.delegate(ROOT, "88", TOP, ttl=30)
    r = resolver(net, site_cache=TTLCache(100, lambda: now[0]))
    await r.resolve("88.123.4567/part-1")
    net.log.clear()
    await r.resolve("88.123.4567/part-1")
    assert net.log == [(ENT, "88.123.4567/part-1")]  # no prefix walk while fresh
    now[0] += 31  # the root's answer for 0.NA/88 expired; the deeper ones did not
    net.log.clear()
    await r.resolve("88.123.4567/part-1")
    assert net.log == [(ROOT, "0.NA/88"), (ENT, "88.123.4567/part-1")]


async def test_service_referral_with_site_values_is_followed():
    net = tree()
    net.refer(SEC, "88.123/moved", "0.NA/88.123.9", [site_value(site(9))])
    net.add(9, "88.123/moved", [HandleValue(1, URL, b"https://x/moved")])
    answer = await resolver(net).resolve("88.123/moved")
    assert answer.values[0].data == b"https://x/moved" and answer.via.startswith("10.0.0.9")


async def test_hs_serv_names_a_service_handle_whose_site_is_used():
    net = tree()
    net.add(ROOT, "0.NA/77", [HandleValue(2, HS_SERV, b"0.SERV/77")])
    net.add(ROOT, "0.SERV/77", [site_value(site(7))])
    net.add(7, "77/thing", [HandleValue(1, URL, b"https://x/77")])
    answer = await resolver(net).resolve("77/thing")
    assert answer.values[0].data == b"https://x/77"
    # a referral without values: the service handle is resolved for its site
    net.refer(7, "77/elsewhere", "0.SERV/78", None)
    net.add(ROOT, "0.SERV/78", [site_value(site(8))])
    net.add(8, "77/elsewhere", [HandleValue(1, URL, b"https://x/8")])
    assert (await resolver(net).resolve("77/elsewhere")).values[0].data == b"https://x/8"
    # a service handle that needs itself: a loop, not a budget run-out
    net.add(ROOT, "0.NA/66", [HandleValue(2, HS_SERV, b"0.NA/66.SERVICE")])
    net.add(ROOT, "0.NA/66.SERVICE", [site_value(site(6))])
    with pytest.raises(ReferralLoop, match="service loop"):
        await resolver(net).resolve("66/thing")


async def test_referral_loop_stops_with_a_clear_error():
    net = tree()
    net.refer(SEC, "88.123/ping", "0.NA/x", [site_value(site(5))])
    net.refer(5, "88.123/ping", "0.NA/y", [site_value(site(SEC))])
    with pytest.raises(ReferralLoop, match="referral loop"):
        await resolver(net).resolve("88.123/ping")


async def test_a_child_whose_site_points_back_at_its_parent_is_a_loop():
    net = tree()
    net.delegate(TOP, "88.666", TOP)  # the child's site is the parent itself
    net.refer(TOP, "88.666/x", "0.NA/88.666", [site_value(site(TOP))])
    with pytest.raises(ReferralLoop):
        await resolver(net).resolve("88.666/x")


async def test_referral_chain_stops_at_the_recursion_bound():
    net = tree()
    for n in range(10, 40):  # 10 -> 11 -> 12 -> ... never repeating
        net.refer(n, "88.123/far", f"0.NA/s{n}", [site_value(site(n + 1))])
    net.refer(SEC, "88.123/far", "0.NA/s", [site_value(site(10))])
    with pytest.raises(RecursionBound) as err:
        await resolver(net).resolve("88.123/far")
    assert err.value.code == ResponseCode.RECURSION_COUNT_TOO_HIGH
    assert len(net.log) < 20


async def test_aliases_are_followed_and_loops_and_long_chains_refused():
    net = tree()
    alias = lambda target: [HandleValue(1, HS_ALIAS, target.encode(), ttl=50)]  # noqa: E731
    net.add(SEC, "88.123/old", alias("88.123.4567/part-1"))
    answer = await resolver(net).resolve("88.123/old")
    assert answer.values[0].data == b"https://x/1" and answer.handle == "88.123/old"
    assert answer.ttl == 50  # the shortest TTL along the chain

    net.add(SEC, "88.123/a", alias("88.123/b"))
    net.add(SEC, "88.123/b", alias("88.123/A"))  # case-insensitive: back to a
    with pytest.raises(ReferralLoop, match="alias loop"):
        await resolver(net).resolve("88.123/a")

    for i in range(MAX_ALIAS_CHAIN + 2):
        net.add(SEC, f"88.123/c{i}", alias(f"88.123/c{i + 1}"))
    with pytest.raises(RecursionBound, match="alias chain"):
        await resolver(net).resolve("88.123/c0")


async def test_absolute_and_capped_ttls():
    net = tree()
    wall = 1_000_000.0
    net.add(
        SEC,
        "88.123/abs",
        [HandleValue(1, URL, b"u", ttl_type=TTLType.ABSOLUTE, ttl=int(wall) + 40)],
    )
    r = resolver(net, wall=lambda: wall, max_ttl=100.0)
    assert (await r.resolve("88.123/abs")).ttl == 40
    assert (await r.resolve("88.123.4567/part-1")).ttl == 100  # 300 capped


async def test_a_down_server_falls_back_then_fails_clearly():
    net = tree()
    net.down.add(ENT)
    with pytest.raises(UpstreamFailed, match="no server answered .*10.0.0.4"):
        await resolver(net).resolve("88.123.4567/part-1")


async def test_whole_resolution_has_a_deadline():
    net = tree()
    net.delay = 10
    with pytest.raises(UpstreamFailed, match="longer than 0.3s"):
        await resolver(net, timeout=5, total_timeout=0.3).resolve("88.123.4567/part-1")


async def _tcp_server(handler) -> tuple[asyncio.base_events.Server, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_upstream_answering_garbage_is_a_clear_bounded_error():
    async def garbage(reader, writer):
        await reader.read(100)
        writer.write(b"\x02\x0a" + b"\xff" * 200)  # an envelope announcing nonsense
        await writer.drain()
        writer.close()

    server, port = await _tcp_server(garbage)
    root = SiteInfo.for_single_server("127.0.0.1", udp_port=None, tcp_port=port, http_port=None)
    async with server:
        with pytest.raises(UpstreamFailed, match="no server answered"):
            await GlobalResolver([root], timeout=1, wall=ManualClock()).resolve("88/x")


async def test_upstream_too_slow_is_a_clear_bounded_error():
    async def silent(reader, writer):
        await asyncio.sleep(30)

    server, port = await _tcp_server(silent)
    root = SiteInfo.for_single_server("127.0.0.1", udp_port=None, tcp_port=port, http_port=None)
    async with server:
        with pytest.raises(UpstreamFailed, match="within 0.5s"):
            await GlobalResolver(
                [root], transport=network_transport, timeout=0.5, wall=ManualClock()
            ).resolve("88/x")


def test_root_info_files_binary_and_json(tmp_path):
    s = site(ROOT)
    (tmp_path / "bin").write_bytes(encode_site(s))
    (tmp_path / "json").write_text(__import__("json").dumps([site_to_json(s)]))
    assert load_root_info(tmp_path / "bin") == [s]
    assert load_root_info(tmp_path / "json")[0].servers == s.servers
    (tmp_path / "bad").write_bytes(b"\x00\x01garbage")
    with pytest.raises(Exception, match="not HS_SITE data"):
        load_root_info(tmp_path / "bad")
