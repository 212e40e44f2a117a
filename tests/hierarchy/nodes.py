"""In-process parent nodes for the delegation tests: a real node (store, write service,
registry, hierarchy) opened as ``idnode serve`` and ``idnode child ...`` open it, on a
manual clock, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from idnode.app import NodeApp, open_node
from idnode.bootstrap import init_node
from idnode.config import Config
from idnode.crypto.keys import generate_key, public_key_to_pem
from idnode.runtime import ManualClock, Runtime, SeededRandom
from idnode.wire.site import SiteInfo, encode_site

CHILD_SITE = encode_site(SiteInfo.for_single_server("127.0.0.2", 2641, 2641, 8000))
KEY_PEM = public_key_to_pem(generate_key("ed25519")).decode()
VALID_CODE = "91350100M000100Y43"  # a valid unified social credit code
CONTACT = {"name": "Lin Wei", "phone": "+86 591 88880000", "email": "lin@example.cn"}
START = 1_793_577_600.0  # 2026-11-02


def request(token: str, prefix: str = "88.123", site: bytes = CHILD_SITE) -> dict:
    """What ``idnode enrol`` posts."""
    return {
        "token": token,
        "prefix": prefix,
        "site": base64.b64encode(site).decode(),
        "public_key": KEY_PEM,
        "name": "child",
        "role": "secondary",
    }


async def make_parent(
    directory: Path, *, prefix: str, role: str, runtime: Runtime, store_url: str = ""
) -> Config:
    """``idnode init`` of a parent with a hierarchy role (no background reporting)."""
    cfg = await init_node(
        directory, name=role, prefixes=[prefix], runtime=runtime, store_url=store_url
    )
    cfg.hierarchy.role = role
    cfg.hierarchy.token_ttl = 600
    cfg.hierarchy.report_interval = 0
    return cfg


@asynccontextmanager
async def opened(cfg: Config, runtime: Runtime) -> AsyncIterator[NodeApp]:
    node = await open_node(cfg, runtime=runtime)
    try:
        yield node
    finally:
        await node.close()


@asynccontextmanager
async def parent_node(
    tmp_path: Path, *, prefix: str = "88", role: str = "top-level", store_url: str = ""
) -> AsyncIterator[NodeApp]:
    runtime = Runtime(ManualClock(START), SeededRandom(0))
    cfg = await make_parent(
        tmp_path / "parent", prefix=prefix, role=role, runtime=runtime, store_url=store_url
    )
    async with opened(cfg, runtime) as node:
        yield node


async def reviewed(node: NodeApp, prefix: str, *, approve: bool = True) -> None:
    """The registry's review of ``prefix``: an approved organisation applies for it
    (auto-parts template), and (``approve``) the operator approves it."""
    reg = node.registry
    assert reg is not None
    org = await reg.organisations.apply("t", "Fujian Auto Parts Co., Ltd.", VALID_CODE, CONTACT)
    await reg.organisations.approve("t", org["id"])
    await reg.prefixes.apply("t", prefix, org["id"], "auto-parts")
    if approve:
        await reg.prefixes.approve("t", prefix)


async def eventually(check, what: str, timeout: float = 10.0):
    """``await check()``'s first truthy result, polled (another process's change arrives in
    its own time; the bound only turns "never" into a failure)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def pg_schema_name() -> str:
    return "hier_" + os.urandom(6).hex()
