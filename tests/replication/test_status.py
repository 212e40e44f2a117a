"""What a node shows of its replication: ``/metrics`` (role, epoch, position, a mirror's lag
behind its source) read from the store, so every worker shows the same."""

from __future__ import annotations

import httpx
import pytest

from idnode.crypto.keys import generate_key
from idnode.errors import MalformedMessage
from idnode.model import HandleValue
from idnode.replication.status import read_status
from idnode.transport.http import build_app
from tests.replication.test_mirror import mirror_template, pair  # noqa: F401
from tests.transport.conftest import PREFIX, node_template, wire_node  # noqa: F401

URL = HandleValue(1, "URL", b"https://example.com/s")


async def metrics_of(node) -> str:
    app = build_app(node, extra_routes=node.routes)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as c:
        reply = await c.get("/metrics")
    assert reply.status_code == 200, reply.text
    return reply.text


async def test_a_mirror_shows_how_far_it_is_behind(pair):  # noqa: F811
    await pair.loop.pull_once()
    status = await read_status(pair.mirror.store, "mirror")
    assert status.lag == 0 and status.source == pair.loop.sources[0]
    assert status.serial == await pair.primary.node.store.serial()
    text = await metrics_of(pair.mirror)
    assert 'idnode_replication_role{role="mirror"} 1.0' in text
    assert "idnode_mirror_lag_transactions 0.0" in text

    async with pair.primary.client() as c:  # three writes the mirror cannot apply
        for n in range(3):
            await c.create_handle(f"{PREFIX}/lag-{n}", [URL])
    pair.loop._keys[pair.loop.sources[0]] = generate_key("rsa", 1024).public_key()
    with pytest.raises(MalformedMessage):
        await pair.loop.pull_once()
    assert (await read_status(pair.mirror.store, "mirror")).lag == 3
    assert "idnode_mirror_lag_transactions 3.0" in await metrics_of(pair.mirror)

    del pair.loop._keys[pair.loop.sources[0]]  # the right key again: it catches up
    await pair.loop.pull_once()
    assert "idnode_mirror_lag_transactions 0.0" in await metrics_of(pair.mirror)


async def test_a_primary_shows_its_role_and_position(pair):  # noqa: F811
    text = await metrics_of(pair.primary.node)
    serial = await pair.primary.node.store.serial()
    assert 'idnode_replication_role{role="primary"} 1.0' in text
    assert f"idnode_replication_position {float(serial)}" in text
    assert "idnode_mirror_lag_transactions" not in text
