"""An in-process node served on real UDP and TCP sockets, with a clock the test can move.

``idnode serve`` in a subprocess (tests/conftest.py) cannot have its challenge clock
advanced; here the node runs on a ``ManualClock`` so an expired nonce takes no waiting.
The node directory is made once per module by ``idnode init`` and copied for each test.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from idnode.app import NodeApp as Node
from idnode.app import open_node
from idnode.bootstrap import ADMIN_KEY_NAME, init_node
from idnode.client.admin import AdminClient
from idnode.config import load_config
from idnode.crypto.keys import load_private_key_pem
from idnode.runtime import ManualClock, Runtime, SystemRandom, system
from idnode.transport.tcp import serve_tcp
from idnode.transport.udp import serve_udp
from idnode.transport.wire_handler import WireHandler
from tests.conftest import free_port

PREFIX = "20.500.77"
OPERATOR = f"300:0.NA/{PREFIX}"
CHALLENGE_TTL = 30.0


@dataclass
class WireNode:
    node: Node
    handler: WireHandler
    clock: ManualClock
    host: str
    port: int
    directory: Path
    admin_key: object

    def client(self, protocol: str = "tcp", identity: str = OPERATOR, **kw) -> AdminClient:
        if "secret" not in kw and "private_key" not in kw:
            kw["private_key"] = self.admin_key
        return AdminClient(self.host, self.port, protocol, identity, **kw)

    def dump(self) -> list[str]:
        """Every row of the store, as SQL: a failed write must leave this unchanged."""
        with sqlite3.connect(self.directory / "node.db") as db:
            return list(db.iterdump())


@pytest.fixture(scope="module")
def node_template(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("template") / "node"
    asyncio.run(
        init_node(directory, name="wire-test", prefixes=[PREFIX], demo=True, runtime=system())
    )
    return directory


@pytest.fixture
async def wire_node(node_template, tmp_path) -> AsyncIterator[WireNode]:
    directory = tmp_path / "node"
    shutil.copytree(node_template, directory)
    clock = ManualClock()
    node = await open_node(load_config(directory, env={}), runtime=Runtime(clock, SystemRandom()))
    handler = WireHandler(node, challenge_ttl=CHALLENGE_TTL)
    port = free_port()
    udp_transport, _ = await serve_udp(handler, "127.0.0.1", port)
    tcp_server = await serve_tcp(handler, "127.0.0.1", port)
    key = load_private_key_pem((directory / ADMIN_KEY_NAME).read_bytes())
    try:
        yield WireNode(node, handler, clock, "127.0.0.1", port, directory, key)
    finally:
        udp_transport.close()
        tcp_server.close()
        await tcp_server.wait_closed()
        await node.store.close()
