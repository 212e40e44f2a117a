"""Multi-site HS_SITE (RFC 3652 §3.3): the primary publishes a mirror's site in its prefix
record; clients read the sites, ask the hashed server of each in turn, fail over to the
mirror when the primary is silent, and send writes to the primary site only."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from typer.testing import CliRunner

from idnode.app import open_node
from idnode.bootstrap import ADMIN_KEY_NAME
from idnode.client.failover import first_answer
from idnode.client.resolve import request_tcp, request_udp, resolution_request, siteinfo_request
from idnode.client.sites import site_plan, sites_of
from idnode.codes import Permission
from idnode.config import load_config
from idnode.hierarchy.cache import TTLCache
from idnode.hierarchy.resolver import GlobalResolver
from idnode.model import NA_PREFIX
from idnode.replication.promotion import promote_store
from idnode.replication.sites import publish_mirror_site
from idnode.runtime import ManualClock, Runtime, SystemRandom
from idnode.service.site import Listeners, publish_site
from idnode.transport.tcp import serve_tcp
from idnode.transport.udp import serve_udp
from idnode.transport.wire_handler import WireHandler
from idnode.wire.site import SP_HDL_TCP, SP_HDL_UDP
from tests.conftest import free_port
from tests.replication.test_mirror import mirror_template  # noqa: F401
from tests.transport.conftest import OPERATOR, PREFIX, node_template, wire_node  # noqa: F401

HANDLE = f"{PREFIX}/demo-1"
RECORD = NA_PREFIX + PREFIX


async def serve(node, port):
    handler = WireHandler(node)
    udp, _ = await serve_udp(handler, "127.0.0.1", port)
    tcp = await serve_tcp(handler, "127.0.0.1", port)

    async def stop():
        udp.close()
        tcp.close()
        await tcp.wait_closed()

    return stop


async def open_served_mirror(template, tmp_path, primary, port):
    directory = tmp_path / "mirror"
    shutil.copytree(template, directory)
    cfg = load_config(directory, env={})
    cfg.server.host = "127.0.0.1"
    cfg.server.udp_port = cfg.server.tcp_port = port
    cfg.replication.role = "mirror"
    cfg.replication.sources = [f"{primary.host}:{primary.port}"]
    cfg.replication.identity = OPERATOR
    cfg.replication.key = str(primary.directory / ADMIN_KEY_NAME)
    return cfg, await open_node(cfg, runtime=Runtime(ManualClock(), SystemRandom()))


def public(values):
    return [v for v in values if v.permissions & Permission.PUBLIC_READ]


async def record_sites(host, port):
    reply = await request_udp(host, port, resolution_request(RECORD), timeout=1.0)
    return sites_of(reply.body.values)


@pytest.fixture
async def site_pair(wire_node, mirror_template, tmp_path):  # noqa: F811
    """A primary with its listeners published, a served mirror whose site it publishes."""
    await publish_site(wire_node.node, Listeners(wire_node.port, wire_node.port, None))
    port = free_port()
    cfg, mirror = await open_served_mirror(mirror_template, tmp_path, wire_node, port)
    stop = await serve(mirror, port)
    reply = await request_tcp("127.0.0.1", port, siteinfo_request(), timeout=1.0)
    await publish_mirror_site(wire_node.node, reply.body.site)
    assert mirror.mirror is not None
    await mirror.mirror.pull_once()
    try:
        yield wire_node, mirror, port, cfg
    finally:
        await stop()
        await mirror.close()


async def test_the_prefix_lists_both_sites_and_clients_fail_over(site_pair):
    primary, mirror, port, _ = site_pair
    sites = await record_sites("127.0.0.1", port)  # the mirror holds the same record
    assert [s.is_primary for s in sites] == [True, False]
    reads = site_plan(sites, HANDLE, SP_HDL_UDP)
    assert reads == [("127.0.0.1", primary.port), ("127.0.0.1", port)]
    assert site_plan(sites, HANDLE, SP_HDL_TCP, write=True) == [("127.0.0.1", primary.port)]
    # publishing again refreshes the listed site instead of adding it twice
    reply = await request_tcp("127.0.0.1", port, siteinfo_request(), timeout=1.0)
    await publish_mirror_site(primary.node, reply.body.site)
    assert len(await record_sites("127.0.0.1", primary.port)) == 2

    # the primary goes silent (its server's port answers nothing): a client asking the
    # sites in turn gets the mirror's answer
    dead = free_port()
    plan = [("127.0.0.1", dead), *reads[1:]]
    skipped = []

    async def ask(host, p):
        return await request_udp(host, p, resolution_request(HANDLE), timeout=0.3)

    reply = await first_answer(plan, ask, lambda h, p, e: skipped.append(p))
    assert skipped == [dead] and reply.body.values
    assert list(reply.body.values) == public(await primary.node.store.get_handle(HANDLE))


async def test_the_hierarchy_resolver_reaches_the_mirror_site_when_the_primary_is_silent(
    site_pair,
):
    primary, mirror, port, _ = site_pair
    sites = await record_sites("127.0.0.1", port)
    from dataclasses import replace

    # the primary site's server moved to a port nobody answers on
    dead = free_port()
    first = sites[0]
    moved = replace(
        first,
        servers=tuple(
            replace(s, interfaces=tuple(replace(i, port=dead) for i in s.interfaces))
            for s in first.servers
        ),
    )
    # the sites stand as the root here: "20" is known not to be delegated further
    cache = TTLCache(16, lambda: 0.0)
    cache.put("20", None, 60, negative=True)
    resolver = GlobalResolver([moved, sites[1]], wall=lambda: 0.0, timeout=0.3, site_cache=cache)
    answer = await resolver.resolve(HANDLE)
    assert list(answer.values) == public(await mirror.store.get_handle(HANDLE))
    assert resolver.stats.upstream_errors >= 1


async def test_idnode_get_sites_fails_over_from_the_record(site_pair):
    primary, mirror, port, _ = site_pair
    from idnode.cli import app

    runner = CliRunner()
    args = ["get", HANDLE, "--server", f"127.0.0.1:{port}", "--sites", "--timeout", "0.5"]
    result = await asyncio.to_thread(runner.invoke, app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert "https://" in result.output


async def test_a_promoted_mirror_publishes_itself_as_the_primary_site(site_pair, tmp_path):
    primary, mirror, port, cfg = site_pair
    await promote_store(cfg, Runtime(ManualClock(), SystemRandom()))
    cfg.replication.role = "primary"
    promoted = await open_node(cfg, runtime=Runtime(ManualClock(), SystemRandom()))
    try:
        await publish_site(promoted, Listeners(port, port, None))
        values = await promoted.store.get_handle(RECORD)
        sites = sites_of(values)
        primary_site = [s for s in sites if s.is_primary]
        assert len(sites) == 2 and len(primary_site) == 1
        assert primary_site[0].servers[0].interface(SP_HDL_TCP).port == port
    finally:
        await promoted.close()


async def test_idnode_admin_sites_sends_the_write_to_the_primary_site(site_pair):
    """Pointed at the mirror, ``idnode admin create --sites`` reads the prefix's sites there
    and writes on the primary site's server (the mirror would refuse it with 301)."""
    primary, mirror, port, _ = site_pair
    from idnode.cli import app

    handle = f"{PREFIX}/written-via-sites"
    key = primary.directory / ADMIN_KEY_NAME
    auth = ["--id", OPERATOR, "--key", str(key)]
    args = ["admin", "create", handle, "--value", "1:URL:https://example.com/w",
            "--server", f"127.0.0.1:{port}", "--sites", *auth]  # fmt: skip
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    assert await primary.node.store.get_handle(handle) is not None
    assert await mirror.store.get_handle(handle) is None  # until the mirror pulls
    await mirror.mirror.pull_once()
    assert await mirror.store.get_handle(handle) is not None


async def test_a_write_fails_over_to_the_next_server_of_the_primary_site(site_pair):
    """The primary site lists two servers and the handle hashes to one that is down: the
    write goes to the site's other server; the mirror site is never asked."""
    from dataclasses import replace

    from idnode.auth.identity import Identity
    from idnode.client.admin import AdminClient, PrimaryWriter
    from idnode.client.sites import server_number
    from idnode.crypto.keys import load_private_key_pem
    from idnode.model import HandleValue
    from idnode.service.node import ADMIN_INDEX
    from idnode.wire.site import decode_site, encode_site

    primary, mirror, port, _ = site_pair
    stored = await primary.node.store.get_handle(RECORD)
    value = next(v for v in stored if v.type == "HS_SITE" and decode_site(v.data).is_primary)
    site = decode_site(value.data)
    (server,) = site.servers
    dead = free_port()
    silent = replace(
        server, server_id=2, interfaces=tuple(replace(i, port=dead) for i in server.interfaces)
    )
    handle = f"{PREFIX}/failed-over"
    servers = [server, server]
    servers[server_number(handle, site.hash_option, 2)] = silent
    two = replace(site, servers=tuple(servers))
    operator = Identity(RECORD, ADMIN_INDEX)
    await primary.node.admin.modify_values(
        operator, RECORD, [replace(value, data=encode_site(two))]
    )
    await mirror.mirror.pull_once()

    key = load_private_key_pem((primary.directory / ADMIN_KEY_NAME).read_bytes())
    skipped = []

    def connect(host, p):
        return AdminClient(host, p, "tcp", OPERATOR, key, timeout=1.0)

    url = HandleValue(1, "URL", b"https://example.com/f")
    async with PrimaryWriter(
        [("127.0.0.1", port)], connect, timeout=1.0, on_skip=lambda h, p, e: skipped.append(p)
    ) as writer:
        assert await writer.plan(handle) == [("127.0.0.1", dead), ("127.0.0.1", primary.port)]
        await writer.write(handle, lambda c: c.create_handle(handle, [url]))
    assert skipped == [dead]
    assert await primary.node.store.get_handle(handle) is not None
