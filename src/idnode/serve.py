"""``idnode serve``: UDP, TCP and HTTP listeners for one node in one asyncio process.

Beside the composition root (``app.py``): it opens the node with its features, starts their
background work and hands the transports the core node and the features' routes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket

import uvicorn

from idnode.app import NodeApp, open_node
from idnode.config import Config
from idnode.ingest.runner import ingesting_process, start_ingest
from idnode.replication.fence import check_fence
from idnode.runtime import Runtime
from idnode.service.site import Listeners, publish_site
from idnode.transport.cache_metrics import ResponseCacheCollector
from idnode.transport.connections import ConnectionBudget, raise_fd_limit
from idnode.transport.http import build_app
from idnode.transport.http_fast import CachedRestAnswers, cached_answers_protocol
from idnode.transport.http_guard import (
    HeadLimits,
    HttpGuard,
    guarded_protocol,
    head_limits_protocol,
)
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


async def fill_public_answers(node: NodeApp, batch: int = 1000) -> None:
    """Encode the public answers of records written before they existed (the store path's
    migration leaves them to the full path until then), a batch at a time between the
    serving work; worker 0 only. Idempotent: a restart carries on (records done are skipped)."""
    after: str | None = ""
    batches = 0
    try:
        while after is not None:
            after = await node.store.fill_public_answers(after, batch)
            batches += 1
            await asyncio.sleep(0)  # (each batch is one write transaction: let others in)
    except Exception:  # a busy or closed store: the next start carries on
        log.exception("filling the stored public answers stopped")
        return
    if batches > 1:
        log.info("stored public answers filled", extra={"batches": batches})


def watch_caches(node: NodeApp, caches: dict[str, ResponseCache | None]) -> None:
    """Show the caches in ``/metrics`` and clear them when the registry's states change here
    or in another process (writes clear them through ``response_cache_for``)."""
    live = {face: cache for face, cache in caches.items() if cache is not None}
    if node.registry is None:
        return
    node.registry.stats.metrics.register(ResponseCacheCollector(live))
    for cache in live.values():  # a suspended or reactivated identifier: answers change
        node.registry.states.listeners.append(cache.invalidate)


def http_protocol(
    config: Config,
    handler: WireHandler,
    answers: CachedRestAnswers | None,
    budget: ConnectionBudget,
) -> type:
    """uvicorn's HTTP protocol with our layers, innermost first: head limits, cached
    answers, the request deadline, then the guard on output and connections
    (``http_guard``: the order matters, its docstring says why)."""
    limits = config.limits
    protocol = head_limits_protocol(HeadLimits.from_settings(limits))
    if answers is not None:
        protocol = cached_answers_protocol(answers, base=protocol)
    protocol = request_deadline_protocol(limits.http_request_timeout, base=protocol)
    guard = HttpGuard(handler.limits, budget, max_tasks=limits.http_max_concurrency)
    return guarded_protocol(guard, base=protocol)


def bound_ports(udp_transport, tcp_server, http_sockets, http_port: int) -> Listeners:
    """The ports the listeners took (the configured ones, or what the kernel chose for 0)."""
    http = http_sockets[0].getsockname()[1] if http_sockets else http_port
    return Listeners(
        udp=udp_transport.get_extra_info("sockname")[1],
        tcp=tcp_server.sockets[0].getsockname()[1],
        http=http,
    )


def freeze_start_up_objects() -> None:
    """Put what start-up built (modules, the app, routes, schemas, the node's states) out of
    the cyclic garbage collector's reach (``gc.freeze``); what is made later is collected as
    usual. Every full collection walked all of it: a pause of tens of milliseconds every few
    thousand requests, which was most of the REST store path's p99 on PostgreSQL (45-93 ms;
    15-23 ms with the collector off; docs/performance.md, round 7)."""
    gc.collect()
    gc.freeze()


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
    raise_fd_limit()  # before the budget is taken from it
    node = await open_node(config, runtime=runtime)
    if config.replication.peers and node.admin.refusal is None:
        # a primary that was replaced while it was away takes no write (replication/fence.py)
        await check_fence(node.store, node.admin, list(config.replication.peers))
    await node.start()
    ingest = await start_ingest(config, node.registry)  # [ingest]: worker 0 only
    announced = node.store if node.read_replica is None else node.read_replica  # after replay
    wire_cache = await response_cache_for(config, announced)
    rest_cache = await response_cache_for(config, announced)
    watch_caches(node, {"wire": wire_cache, "http": rest_cache})
    handler = WireHandler(node, cache=wire_cache)
    # cached REST answers, and the store path of the others (http_fast)
    answers = CachedRestAnswers(rest_cache, handler.limits, node.resolver)
    # every stream listener of this process shares one connection budget (connections.py)
    budget = ConnectionBudget(config.limits.max_connections)
    protocol = http_protocol(config, handler, answers, budget)
    host, srv = config.server.host, config.server
    udp_transport, _ = await serve_udp(handler, host, srv.udp_port, reuse_port=reuse_port)
    tcp_server = await serve_tcp(handler, host, srv.tcp_port, reuse_port=reuse_port, budget=budget)
    # bound here for port 0 too, so the published site can name the port really taken
    http_sockets = [http_socket(host, srv.http_port)] if reuse_port or not srv.http_port else None
    await publish_site(node, bound_ports(udp_transport, tcp_server, http_sockets, srv.http_port))
    http = uvicorn.Server(
        uvicorn.Config(
            build_app(
                node,
                limits=handler.limits,
                answers=answers,
                extra_routes=node.routes,
                streamed=node.streamed_uploads,  # import files: streamed, bounded on their own
                wire=handler,  # HDL-over-HTTP: the site's HTTP interface speaks the protocol
            ),
            host=host,
            port=srv.http_port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # slow and greedy clients: see [limits] and docs/security.md
            timeout_keep_alive=config.limits.http_keep_alive,
            http=protocol,
            limit_concurrency=None,  # http_guard bounds requests at once, the budget sockets
            h11_max_incomplete_event_size=config.limits.http_max_header_bytes,
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
    # [tls]: TCP+TLS and HTTPS ports, in the same budget
    tls = await start_tls(config, handler, http.config, budget=budget)
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
    freeze_start_up_objects()
    if ready is not None:
        ready.set()
    filling = asyncio.create_task(fill_public_answers(node)) if ingesting_process() else None
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        if filling is not None:
            filling.cancel()
        udp_transport.close()
        tcp_server.close()
        await tls.close()
        http.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(http_task, timeout=5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(tcp_server.wait_closed(), timeout=2)
        if ingest is not None:  # the message in hand is finished and acknowledged first
            await ingest.close()
        await node.close()
        log.info("stopped")
