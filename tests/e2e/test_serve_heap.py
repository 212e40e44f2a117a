"""A serving node puts what start-up built out of the cyclic collector's reach (gc.freeze).

Every full collection walked the whole start-up heap: a pause of tens of milliseconds every
few thousand requests, most of the REST store path's p99 on PostgreSQL (docs/performance.md,
round 7). ``serve`` runs in this process here, so the test can see the collector's state.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal

import httpx

from idnode.bootstrap import init_node
from idnode.config import load_config
from idnode.runtime import system
from idnode.serve import serve
from tests.conftest import free_port


async def test_a_serving_node_freezes_its_start_up_objects_and_answers(tmp_path) -> None:
    directory = tmp_path / "node"
    await init_node(directory, name="heap", prefixes=["20.500.55"], demo=True, runtime=system())
    port, http_port = free_port(), free_port()
    env = {
        "IDNODE_SERVER_UDP_PORT": str(port),
        "IDNODE_SERVER_TCP_PORT": str(port),
        "IDNODE_SERVER_HTTP_PORT": str(http_port),
    }
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    ready = asyncio.Event()
    serving = asyncio.create_task(serve(load_config(directory, env=env), system(), ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 60)
        assert gc.get_freeze_count() > 10_000  # the app, its routes, the node's states ...
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{http_port}/api/handles/20.500.55/demo-1")
        assert answer.status_code == 200 and answer.json()["responseCode"] == 1
    finally:
        if ready.is_set():  # (its handler is installed by then)
            os.kill(os.getpid(), signal.SIGTERM)  # serve's own handler: stop, as a service does
        else:
            serving.cancel()
        try:
            await asyncio.wait_for(serving, 30)
        finally:
            gc.unfreeze()
