"""A real ``idnode serve`` (real sockets, the response cache, every route) holding the records
the proxy tests read: 10320/LOC records, a record without a URL, an XSS payload, and a handle
whose name ends in ``/history``. Written through the node's one write service
(``AdminService``) as the node's operator, before the server starts."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from idnode.app import open_node
from idnode.auth.identity import Identity
from idnode.config import load_config
from idnode.model import URL, HandleValue
from tests.conftest import IDNODE, RunningNode, free_port, serve_node

PREFIX = "20.500.321"
LOC = f"{PREFIX}/loc-1"  # a URL at index 1, a 10320/LOC at index 2
NO_URL = f"{PREFIX}/no-url"
XSS = f"{PREFIX}/xss"
HISTORY = f"{PREFIX}/pump/history"  # the handle /api/handles/.../history used to shadow
SPACE = f"{PREFIX}/a b?c"  # needs escaping in a URL
GS1_BATCH = f"{PREFIX}/01/09506000134352/10/ABC"  # a GS1 key (GTIN + batch) homed as a handle

LOCATIONS = (
    b'<locations chooseby="locatt,weighted">'
    b'<location id="0" href="https://primary.example.org/a" weight="1" country="de"/>'
    b'<location id="1" href="https://cn.example.cn/a" weight="0" country="cn"/>'
    b'<location id="2" href="https://example.org/a.json" weight="0" view="json"/>'
    b"</locations>"
)
PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
JS_URL = "javascript:window.__pwned=3"


def _records() -> dict[str, list[HandleValue]]:
    return {
        LOC: [
            HandleValue(1, URL, b"https://first-url.example.org/"),
            HandleValue(2, "10320/LOC", LOCATIONS),
            HandleValue(3, "EMAIL", b"parts@example.org"),
        ],
        NO_URL: [HandleValue(1, "DESC", "泵 7 号 pump seven".encode())],
        XSS: [
            HandleValue(1, "DESC", PAYLOAD.encode()),
            HandleValue(2, '"><script>window.__pwned=4</script>', b"type as payload"),
            HandleValue(3, "NOTE", JS_URL.encode()),
        ],
        HISTORY: [HandleValue(1, URL, b"https://example.org/pump-history-page")],
        SPACE: [HandleValue(1, URL, b"https://example.org/space")],
        GS1_BATCH: [HandleValue(1, URL, b"https://example.org/gtin/09506000134352/ABC")],
    }


def start_proxy_node(directory: Path) -> RunningNode:
    port, http_port = free_port(), free_port()
    subprocess.run(
        [*IDNODE, "init", str(directory), "--name", "proxy-test", "--prefix", PREFIX,
         "--udp-port", str(port), "--tcp-port", str(port), "--http-port", str(http_port)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip

    async def seed() -> None:
        from idnode.runtime import system

        node = await open_node(load_config(directory, env={}), runtime=system())
        operator = Identity(f"0.NA/{PREFIX}", 300)
        try:
            for handle, values in _records().items():
                await node.admin.create_handle(operator, handle, values)
        finally:
            await node.close()

    asyncio.run(seed())
    return serve_node(directory, port, http_port, PREFIX)
