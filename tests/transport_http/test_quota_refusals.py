"""Quota refusals over REST (issue 21, item 6): a JSON error with the IDIS code, never a 500.

HSJ pairs no HTTP status with 603-605; without one they fell to 500. Now the day's requests
used up is 429 (come back tomorrow), an allowance of identifiers used up is 403, and the
refused write leaves the store as it was.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from idnode.app import open_node
from idnode.codes import ResponseCode as RC
from idnode.config import load_config
from idnode.runtime import system
from idnode.transport.http import build_app
from tests.transport_http.support import PREFIX, SECRET, admin_identity, basic, snapshot

AS_ADMIN = basic(admin_identity(), SECRET)  # a prefix admin, not an operator: quotas apply


def record(n: int) -> dict:
    return {"values": [{"index": 1, "type": "URL", "data": f"https://example.cn/{n}"}]}


@asynccontextmanager
async def served(template: Path, tmp_path: Path, **env: str) -> AsyncIterator[Callable]:
    directory = tmp_path / "node"
    shutil.copytree(template, directory)
    node = await open_node(load_config(directory, env=dict(env)), runtime=system())
    transport = httpx.ASGITransport(app=build_app(node))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            yield client, node
    finally:
        await node.store.close()


async def test_registration_limit_is_403_with_code_604(node_template, tmp_path):
    quota = {"IDNODE_QUOTAS_REGISTRATIONS_PER_PREFIX": "1"}
    async with served(node_template, tmp_path, **quota) as (client, node):
        first = await client.put(f"/api/handles/{PREFIX}/q1", json=record(1), headers=AS_ADMIN)
        assert first.status_code == 201, first.text
        before = await snapshot(node.store)
        refused = await client.put(f"/api/handles/{PREFIX}/q2", json=record(2), headers=AS_ADMIN)
        assert refused.status_code == 403, refused.text
        doc = refused.json()
        assert doc["responseCode"] == RC.REGISTER_COUNT_LIMIT and doc["message"]
        assert await snapshot(node.store) == before


async def test_daily_request_limit_is_429_with_code_603(node_template, tmp_path):
    async with served(node_template, tmp_path, IDNODE_QUOTAS_DAILY_REQUESTS="1") as (client, _):
        first = await client.put(f"/api/handles/{PREFIX}/d1", json=record(1), headers=AS_ADMIN)
        assert first.status_code == 201, first.text
        refused = await client.put(f"/api/handles/{PREFIX}/d2", json=record(2), headers=AS_ADMIN)
        assert refused.status_code == 429, refused.text
        assert refused.json()["responseCode"] == RC.REQUEST_LIMIT_DAILY
