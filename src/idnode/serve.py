"""``idnode serve``: UDP, TCP and HTTP listeners for one node in one asyncio process.

Beside the composition root (``app.py``): it opens the node with its features, starts their
background work and hands the transports the core node and the features' routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket

import uvicorn

from idnode.app import NodeApp, open_node
from idnode.config import Config
from idnode.runtime import Runtime
from idnode.transport.cache_metrics import ResponseCacheCollector
from idnode.transport.http import build_app
from idnode.transport.http_fast import CachedRestAnswers, cached_answers_protocol
from idnode.transport.response_cache import ResponseCache
from idnode.transport.slow_clients import request_deadline_protocol
from idnode.transport.tcp import serve_tcp
from idnode.transport.tls import start_tls
from idnode.transport.udp import serve_udp
from idnode.transport.wire_handler import WireHandler

log = logging.getLogger("idnode.server")


def http_socket(host: str, port: int) -> socket.socket:
    """A listening socket that sibling workers can bind too (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def response_cache_for(config: Config, store) -> ResponseCache | None:
    """The worker's response cache, cleared by every write the store announces."""
    if config.server.cache_entries <= 0:
        return None
    cache = ResponseCache(config.server.cache_entries)
    try:
        await store.subscribe(cache.invalidate)
    except NotImplementedError:
        log.warning("store cannot announce writes; response cache disabled")
        return None
    return cache


def watch_caches(node: NodeApp, caches: dict[str, ResponseCache | None]) -> None:
    """Show the caches in ``/metrics`` and clear them when the registry's states change here
    or in another process (writes clear them through ``response_cache_for``)."""
    live = {face: cache for face, cache in caches.items() if cache is not None}
    if node.registry is None:
        return
    node.registry.stats.metrics.register(ResponseCacheCollector(live))
    for cache in live.values():  # a suspended or reactivated identifier: answers change
        node.registry.states.listeners.append(cache.invalidate)


async def serve(
    config: Config,
    runtime: Runtime,
    *,
    ready: asyncio.Event | None = None,
    reuse_port: bool = False,
) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting, finish, close the store and return.

    ``reuse_port`` lets several worker processes (``idnode serve --workers N``) bind the same
    UDP, TCP and HTTP ports; the kernel spreads clients across them.
    """
    node = await open_node(config, runtime=runtime)
    await node.start()
    wire_cache = await response_cache_for(config, node.store)
    rest_cache = await response_cache_for(config, node.store)
    watch_caches(node, {"wire": wire_cache, "http": rest_cache})
    handler = WireHandler(node, cache=wire_cache)
    answers = (
        None if rest_cache is None else CachedRestAnswers(rest_cache, handler.limits, node.resolver)
    )
    protocol = request_deadline_protocol(
        config.limits.http_request_timeout,
        base=None if answers is None else cached_answers_protocol(answers),
    )
    host, srv = config.server.host, config.server
    udp_transport, _ = await serve_udp(handler, host, srv.udp_port, reuse_port=reuse_port)
    tcp_server = await serve_tcp(handler, host, srv.tcp_port, reuse_port=reuse_port)
    http_sockets = [http_socket(host, srv.http_port)] if reuse_port else None
    http = uvicorn.Server(
        uvicorn.Config(
            build_app(node, limits=handler.limits, answers=answers, extra_routes=node.routes),
            host=host,
            port=srv.http_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # slow and greedy clients: see [limits] and docs/security.md
            timeout_keep_alive=config.limits.http_keep_alive,
            http=protocol,
            limit_concurrency=config.limits.http_max_concurrency or None,
            h11_max_incomplete_event_size=16 * 1024,
        )
    )
    http.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    http_task = asyncio.create_task(http.serve(sockets=http_sockets))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    while not http.started and not http_task.done():
        await asyncio.sleep(0.01)
    if http_task.done():
        http_task.result()  # re-raise a bind failure
    tls = await start_tls(config, handler, http.config)  # [tls]: TCP+TLS and HTTPS ports
    log.info(
        "serving",
        extra={
            "node": config.node.name,
            "prefixes": list(node.homed),
            "udp": f"{host}:{srv.udp_port}",
            "tcp": f"{host}:{srv.tcp_port}",
            "http": f"http://{host}:{srv.http_port}",
        },
    )
    print(
        f"idnode {config.node.name}: UDP {host}:{srv.udp_port}  TCP {host}:{srv.tcp_port}  "
        f"HTTP http://{host}:{srv.http_port}/  "
        + "".join(f"{line}  " for line in tls.banner)
        + "(Ctrl-C to stop)",
        flush=True,
    )
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        udp_transport.close()
        tcp_server.close()
        await tls.close()
        http.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(http_task, timeout=5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(tcp_server.wait_closed(), timeout=2)
        await node.close()
        log.info("stopped")
