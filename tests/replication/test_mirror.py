"""A mirror following an in-process primary over real TCP (the pull loop's rounds, one at a
time): dump when new, the log after, idempotence, permissions, refusals, signatures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from idnode.app import NodeApp, open_node
from idnode.auth.identity import Identity
from idnode.bootstrap import ADMIN_KEY_NAME, init_node
from idnode.client.admin import AdminError
from idnode.codes import ResponseCode
from idnode.config import load_config
from idnode.crypto.keys import encode_public_key, generate_key, private_key_to_pem
from idnode.errors import MalformedMessage, NotPrimary
from idnode.model import HS_PUBKEY, HandleValue
from idnode.replication.mirror import Mirror
from idnode.runtime import ManualClock, Runtime, SystemRandom, system
from idnode.service.replication import position_effects, position_of
from idnode.wire import replication as rw
from tests.transport.conftest import OPERATOR, PREFIX, WireNode, node_template, wire_node  # noqa: F401

URL = HandleValue(1, "URL", b"https://example.com/one")


@pytest.fixture(scope="module")
def mirror_template(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mirror-template") / "mirror"
    asyncio.run(init_node(directory, name="mirror", prefixes=[], runtime=system()))
    return directory


@dataclass
class Pair:
    primary: WireNode
    mirror: NodeApp

    @property
    def loop(self) -> Mirror:
        assert self.mirror.mirror is not None
        return self.mirror.mirror

    async def same(self, handle: str) -> bool:
        ours = await self.mirror.store.get_handle(handle)
        theirs = await self.primary.node.store.get_handle(handle)
        return ours == theirs


async def open_mirror(
    template, tmp_path, primary: WireNode, identity=OPERATOR, key_file=None, store_url=""
):
    import shutil

    directory = tmp_path / "mirror"
    shutil.copytree(template, directory)
    cfg = load_config(directory, env={})
    if store_url:
        cfg.store.url = store_url
    cfg.replication.role = "mirror"
    cfg.replication.sources = [f"{primary.host}:{primary.port}"]
    cfg.replication.identity = identity
    cfg.replication.key = str(key_file or primary.directory / ADMIN_KEY_NAME)
    return await open_node(cfg, runtime=Runtime(ManualClock(), SystemRandom()))


@pytest.fixture
async def pair(wire_node, mirror_template, tmp_path) -> AsyncIterator[Pair]:  # noqa: F811
    mirror = await open_mirror(mirror_template, tmp_path, wire_node)
    try:
        yield Pair(wire_node, mirror)
    finally:
        await mirror.close()


async def test_a_new_mirror_dumps_then_follows_the_log(pair):
    assert await pair.loop.pull_once() == 0  # NEED_TO_REDUMP, then the dump
    assert pair.loop.stats.dumps == 1
    for handle in (f"{PREFIX}/demo-1", f"{PREFIX}/demo-2", f"0.NA/{PREFIX}"):
        assert await pair.same(handle) and await pair.mirror.store.get_handle(handle)
    assert pair.mirror.homed.homes_prefix(PREFIX)
    primary_serial = await pair.primary.node.store.serial()
    assert await position_of(pair.mirror.store) == rw.txn_id(0, primary_serial)

    async with pair.primary.client() as c:
        await c.create_handle(f"{PREFIX}/new", [URL])
        await c.add_values(f"{PREFIX}/new", [HandleValue(2, "DESC", b"two")])
        await c.delete_handle(f"{PREFIX}/demo-2")
    applied = await pair.loop.pull_once()
    # the create and the add both carry the record's current values (HSJ does the same)
    assert applied == 3 and pair.loop.stats.dumps == 1
    assert [v.index for v in await pair.mirror.store.get_handle(f"{PREFIX}/new")] == [1, 2]
    assert await pair.mirror.store.get_handle(f"{PREFIX}/demo-2") is None
    serial = await pair.primary.node.store.serial()
    assert await position_of(pair.mirror.store) == rw.txn_id(0, serial)
    assert await pair.loop.pull_once() == 0  # nothing new


async def test_applying_the_log_again_changes_nothing(pair):
    await pair.loop.pull_once()
    before = await position_of(pair.mirror.store)
    async with pair.primary.client() as c:
        await c.create_handle(f"{PREFIX}/again", [URL])
        await c.delete_handle(f"{PREFIX}/demo-3")
    await pair.loop.pull_once()
    after = await position_of(pair.mirror.store)
    await pair.mirror.store.apply(position_effects(before), logged=False)  # as after a crash
    assert await pair.loop.pull_once() == 2
    assert await position_of(pair.mirror.store) == after
    assert await pair.same(f"{PREFIX}/again") and await pair.same(f"{PREFIX}/demo-3")


async def test_a_mirror_refuses_writes_with_301(pair):
    await pair.loop.pull_once()
    operator = Identity.parse(OPERATOR)
    with pytest.raises(NotPrimary, match="mirror") as caught:
        await pair.mirror.admin.create_handle(operator, f"{PREFIX}/w", [URL])
    assert caught.value.code == ResponseCode.SERVER_NOT_RESPONSIBLE
    with pytest.raises(NotPrimary):
        await pair.mirror.admin.delete_handle(operator, f"{PREFIX}/demo-1")
    assert await pair.mirror.store.get_handle(f"{PREFIX}/demo-1") is not None


async def test_a_redump_drops_what_the_source_no_longer_has(pair):
    await pair.loop.pull_once()
    await pair.mirror.store.create_handle(f"{PREFIX}/stale", [URL])
    await pair.mirror.store.apply(position_effects(0), logged=False)  # too far behind
    await pair.loop.pull_once()
    assert pair.loop.stats.dumps == 2
    assert await pair.mirror.store.get_handle(f"{PREFIX}/stale") is None
    assert await pair.same(f"{PREFIX}/demo-1")


async def test_a_stream_signed_by_another_key_is_rejected(pair):
    await pair.loop.pull_once()
    async with pair.primary.client() as c:
        await c.create_handle(f"{PREFIX}/forged", [URL])
    address = pair.loop.sources[0]
    pair.loop._keys[address] = generate_key("rsa", 1024).public_key()
    with pytest.raises(MalformedMessage, match="invalid signature"):
        await pair.loop.pull_once()
    assert await pair.mirror.store.get_handle(f"{PREFIX}/forged") is None


async def test_only_replication_admins_may_pull(wire_node, mirror_template, tmp_path):  # noqa: F811
    key = generate_key("rsa", 1024)
    handle = f"{PREFIX}/mirror-id"
    async with wire_node.client() as c:
        await c.create_handle(handle, [HandleValue(300, HS_PUBKEY, encode_public_key(key))])
    key_file = tmp_path / "mirror-key.pem"
    key_file.write_bytes(private_key_to_pem(key))
    mirror = await open_mirror(mirror_template, tmp_path, wire_node, f"300:{handle}", key_file)
    try:
        assert mirror.mirror is not None
        with pytest.raises(Exception, match="may not replicate"):
            await mirror.mirror.pull_once()
        wire_node.node.replication.admins = frozenset({Identity.parse(f"300:{handle}")})
        await mirror.mirror.pull_once()
        assert await mirror.store.get_handle(f"{PREFIX}/demo-1") is not None
    finally:
        await mirror.close()


async def test_a_mirror_is_no_source(pair):
    """A mirror answers 1001 with 301 before any challenge (HSJ: "not a primary"), so a
    mirror following it moves on to the next source."""
    from idnode.client.replication import ReplicationClient
    from idnode.codes import OpCode
    from idnode.transport.tcp import serve_tcp
    from idnode.transport.wire_handler import WireHandler
    from idnode.wire import bodies
    from tests.conftest import free_port

    port = free_port()
    server = await serve_tcp(WireHandler(pair.mirror), "127.0.0.1", port)
    try:
        client = ReplicationClient("127.0.0.1", port, OPERATOR, pair.primary.admin_key)
        with pytest.raises(AdminError, match="mirror") as caught:
            async for _ in client.stream(OpCode.RETRIEVE_TXN_LOG, bodies.RetrieveTxnRequest(0, 0)):
                pass
        assert caught.value.code == ResponseCode.SERVER_NOT_RESPONSIBLE
    finally:
        server.close()
        await server.wait_closed()


async def test_pulls_ride_on_a_session_and_survive_losing_it(pair):
    await pair.loop.pull_once()
    client = pair.loop.client(pair.loop.sources[0])
    assert client.session_id  # authenticated once, not by a challenge every round
    client.session_id = 0x1234567  # as after a restart of the primary: an unknown session
    async with pair.primary.client() as c:
        await c.create_handle(f"{PREFIX}/after-session", [URL])
    assert await pair.loop.pull_once() == 1  # answered by the challenge instead
    assert await pair.same(f"{PREFIX}/after-session")


async def test_a_mirror_on_postgresql_follows(wire_node, mirror_template, tmp_path):  # noqa: F811
    """The mirror's writes (records, the position in ``meta``) on the other engine."""
    from tests.store.conftest import PG_DSN, drop_pg_schema, pg_schema_for

    await drop_pg_schema(tmp_path)
    url = f"{PG_DSN}?schema={pg_schema_for(tmp_path)}"
    mirror = await open_mirror(mirror_template, tmp_path, wire_node, store_url=url)
    try:
        assert mirror.mirror is not None
        await mirror.mirror.pull_once()
        async with wire_node.client() as c:
            await c.create_handle(f"{PREFIX}/pg", [URL])
            await c.delete_handle(f"{PREFIX}/demo-1")
        assert await mirror.mirror.pull_once() == 2
        assert await mirror.store.get_handle(f"{PREFIX}/pg") is not None
        assert await mirror.store.get_handle(f"{PREFIX}/demo-1") is None
        serial = await wire_node.node.store.serial()
        assert await position_of(mirror.store) == rw.txn_id(0, serial)
    finally:
        await mirror.close()
        await drop_pg_schema(tmp_path)


async def test_a_serving_primary_fences_itself_when_a_peer_is_promoted(pair):
    """A partition that heals after a promotion: the running primary's watch finds the newer
    epoch at its peer, keeps the fence in its store and refuses writes with 301."""
    from idnode.replication.fence import FenceWatch
    from idnode.service.replication import EPOCH_KEY, FENCE_KEY, read_meta, set_meta
    from idnode.store.effects import Effects
    from idnode.transport.tcp import serve_tcp
    from idnode.transport.wire_handler import WireHandler
    from tests.conftest import free_port

    port = free_port()
    server = await serve_tcp(WireHandler(pair.mirror), "127.0.0.1", port)
    primary = pair.primary.node
    watch = FenceWatch(primary.store, primary.admin, [f"127.0.0.1:{port}"], interval=0.01)
    watch.start()
    try:
        await asyncio.sleep(0.05)
        assert primary.admin.refusal is None  # same epoch: nothing to fence
        promoted = Effects(statements=(set_meta(EPOCH_KEY, "1"),))
        await pair.mirror.store.apply(promoted, logged=False)  # as `idnode promote` does
        async with asyncio.timeout(10):
            while primary.admin.refusal is None:
                await asyncio.sleep(0.01)
    finally:
        await watch.close()
        server.close()
        await server.wait_closed()
    assert "was promoted (epoch 1, ours 0)" in (await read_meta(primary.store, FENCE_KEY) or "")
    with pytest.raises(AdminError, match="fenced") as caught:
        async with pair.primary.client() as c:
            await c.create_handle(f"{PREFIX}/split", [URL])
    assert caught.value.code == ResponseCode.SERVER_NOT_RESPONSIBLE
