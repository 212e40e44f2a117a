"""How fast names of other schemes are checked and mapped, and how fast a Digital Link scan
is answered (issue 19): the pure mapping (``schemes``) per name, and ``GET /01/...`` 307s
through the in-process HTTP app (httpx ASGI transport, real SQLite store, no sockets), one
request at a time. Printed, never asserted.

    .venv/bin/python bench/schemes.py [--names 20000] [--scans 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from pathlib import Path

import httpx

from idnode.app import open_node
from idnode.auth.identity import Identity
from idnode.bootstrap import init_node
from idnode.config import SchemesSection, load_config
from idnode.model import HandleValue
from idnode.runtime import system
from idnode.schemes.registry import SchemeRegistry
from idnode.transport.http import build_app

PREFIX = "20.500.123"
NAMES = [
    "gs1:01/09506000134352/10/ABC/21/123",
    "https://id.gs1.org/01/09506000134352?17=261231",
    "urn:oid:1.2.156.10011.7.1",
    "ecode:100011234567890",
]


def bench_names(count: int) -> float:
    registry = SchemeRegistry.from_settings(SchemesSection(), [PREFIX])
    start = time.perf_counter()
    for i in range(count):
        registry.to_handle(NAMES[i % len(NAMES)])
    return count / (time.perf_counter() - start)


async def bench_scans(count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "node"
        await init_node(directory, name="bench", prefixes=[PREFIX], runtime=system())
        node = await open_node(load_config(directory, env={}), runtime=system())
        try:
            link = HandleValue(1, "gs1:defaultLink", b"https://example.com/p")
            await node.admin.create_handle(
                Identity(f"0.NA/{PREFIX}", 300), f"{PREFIX}/01/09506000134352", [link]
            )
            transport = httpx.ASGITransport(app=build_app(node))
            async with httpx.AsyncClient(transport=transport, base_url="http://n") as client:
                start = time.perf_counter()
                for _ in range(count):
                    r = await client.get("/01/09506000134352/10/ABC/21/1")  # two misses first
                    assert r.status_code == 307
                return count / (time.perf_counter() - start)
        finally:
            await node.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=20000)
    parser.add_argument("--scans", type=int, default=2000)
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    print(f"names mapped (parse, validate, map): {bench_names(args.names):,.0f}/s")
    rate = asyncio.run(bench_scans(args.scans))
    print(f"Digital Link scans answered (307, serial -> batch -> product): {rate:,.0f}/s")


if __name__ == "__main__":
    main()
