"""A real ``idnode serve`` process for the hardening tests, and what they measure of it.

The node directory is made once (``seeded_node_dir``) with a few records of known answer
sizes; each test module serves it with its own ``[limits]`` (``serve``). Clients bind
127.0.0.x source addresses (Linux routes all of 127/8 to lo) so each test has its own
client address; 127.0.0.1 is exempt from the rate limits unless a test says otherwise.
Memory is the server's RSS (psutil), descriptors its open fds: measured, never timed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from pathlib import Path

import psutil

from idnode.app import open_node
from idnode.bootstrap import init_node
from idnode.config import load_config
from idnode.model import URL, HandleValue
from idnode.runtime import system
from tests.conftest import IDNODE, RunningNode, free_port, stop_node, wait_http

PREFIX = "20.500.93"
BIG = f"{PREFIX}/big"  # about 2 KiB answered
SMALL = f"{PREFIX}/small"
MiB = 1024 * 1024


def seeded_node_dir(directory: Path) -> Path:
    """``idnode init`` plus two records, written through the node's one write path."""

    async def make() -> None:
        config = await init_node(
            directory, name="hardening", prefixes=[PREFIX], demo=False, runtime=system()
        )
        node = await open_node(load_config(config.directory, env={}), runtime=system())
        try:
            big = [HandleValue(i, URL, b"https://example.com/" + b"x" * 380) for i in range(1, 6)]
            await node.store.create_handle(BIG, big)
            await node.store.create_handle(SMALL, [HandleValue(1, URL, b"https://e.com/")])
        finally:
            await node.close()

    asyncio.run(make())
    return directory


def serve(
    directory: Path, env: dict[str, str] | None = None, log: Path | None = None
) -> RunningNode:
    """``idnode serve`` (one worker: limits and budgets are per process) on free ports.

    Its log comes back from ``stop``; a long run passes ``log`` (a file) instead: nobody
    reads the pipe while the node runs, and a full pipe would block the node's logging."""
    port, http_port = free_port(), free_port()
    full = {
        **os.environ,
        "IDNODE_LOG_FORMAT": "json",
        "IDNODE_SERVER_UDP_PORT": str(port),
        "IDNODE_SERVER_TCP_PORT": str(port),
        "IDNODE_SERVER_HTTP_PORT": str(http_port),
        **(env or {}),
    }
    proc = subprocess.Popen(
        [*IDNODE, "serve", str(directory), "--workers", "1"],
        stdout=subprocess.PIPE if log is None else log.open("w"),
        stderr=subprocess.STDOUT,
        text=True,
        env=full,
    )
    node = RunningNode(directory, "127.0.0.1", port, http_port, proc, PREFIX)
    wait_http(node.http_url, proc)
    return node


def stop(node: RunningNode, log: Path | None = None) -> str:
    out = stop_node(node)
    return log.read_text() if log is not None else out


def rss(node: RunningNode) -> int:
    return psutil.Process(node.process.pid).memory_info().rss


def open_fds(node: RunningNode) -> int:
    return psutil.Process(node.process.pid).num_fds()


def connect(node: RunningNode, source: str, port: int | None = None, **opts: int) -> socket.socket:
    """A TCP connection from ``source``; ``opts`` are SO_* buffer sizes set before connecting
    (a small receive window keeps the kernel from taking much of what the server sends)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    for name, value in opts.items():
        sock.setsockopt(socket.SOL_SOCKET, getattr(socket, name), value)
    sock.bind((source, 0))
    sock.connect((node.host, port or node.port))
    return sock


def send_until_refused(sock: socket.socket, chunk: bytes, total: int, stall: float = 3.0) -> int:
    """Send ``chunk`` again and again, never reading, until ``total`` bytes went out or the
    peer took nothing for ``stall`` seconds (it stopped reading); the bytes sent."""
    sock.settimeout(stall)
    sent = 0
    view = memoryview(chunk * 2)  # the stream goes on where the last send stopped
    while sent < total:
        start = sent % len(chunk)
        try:
            sent += sock.send(view[start : start + min(len(chunk), total - sent)])
        except (TimeoutError, BlockingIOError):
            break
        except OSError:  # reset by the server: it refused the rest
            break
    return sent
