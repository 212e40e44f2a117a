"""An in-process node behind httpx's ASGI transport: real store, real services, no sockets.

``idnode init`` runs once per session (it makes two RSA keys); each test gets a copy of that
directory, so every test starts from the same fresh node.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from idnode.app import NodeApp as Node
from idnode.app import open_node
from idnode.bootstrap import ADMIN_KEY_NAME, init_node
from idnode.config import load_config
from idnode.crypto.keys import PrivateKey, private_key_from_pem
from idnode.runtime import system
from idnode.transport.http import build_app
from tests.transport_http.support import PREFIX, provision, snapshot


@dataclass
class Rest:
    client: httpx.AsyncClient
    node: Node
    operator_key: PrivateKey

    async def snapshot(self):
        return await snapshot(self.node.store)


@pytest.fixture(scope="session")
def node_template(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("template") / "node"

    async def make() -> None:
        config = await init_node(
            directory, name="rest-test", prefixes=[PREFIX], demo=True, runtime=system()
        )
        node = await open_node(config, runtime=system())
        try:
            await provision(node.store)
        finally:
            await node.store.close()

    asyncio.run(make())
    return directory


@pytest.fixture
async def rest(node_template: Path, tmp_path: Path) -> AsyncIterator[Rest]:
    directory = tmp_path / "node"
    shutil.copytree(node_template, directory)
    node = await open_node(load_config(directory, env={}), runtime=system())
    key = private_key_from_pem((directory / ADMIN_KEY_NAME).read_bytes())
    transport = httpx.ASGITransport(app=build_app(node))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            yield Rest(client, node, key)
    finally:
        await node.store.close()
