"""Shared fixtures: free ports and real ``idnode serve`` processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from idnode.verify.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
IDNODE = [sys.executable, "-m", "idnode"]


@dataclass
class RunningNode:
    directory: Path
    host: str
    port: int  # UDP and TCP
    http_port: int
    process: subprocess.Popen
    prefix: str

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"


def eventually(check, what: str, timeout: float = 60.0, interval: float = 0.05):
    """``check()``'s first truthy result, polled until ``timeout``.

    For what another process does in its own time (a worker seeing a sibling's write, a
    report arriving): the test waits for the event itself, never a fixed sleep, and the
    generous bound only turns a thing that never happens into a failure.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_http(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            raise RuntimeError(f"server exited with {process.returncode}:\n{out}")
        try:
            if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} did not become ready")


def start_node(
    directory: Path,
    prefix: str = "20.500.123",
    demo: bool = True,
    *,
    serve_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    init_args: tuple[str, ...] = (),
) -> RunningNode:
    """``idnode init`` + ``idnode serve`` on free ports; ``env`` adds IDNODE_* overrides."""
    port, http_port = free_port(), free_port()
    args = [
        *IDNODE,
        "init",
        str(directory),
        "--name",
        "test-node",
        "--prefix",
        prefix,
        "--udp-port",
        str(port),
        "--tcp-port",
        str(port),
        "--http-port",
        str(http_port),
    ]
    if demo:
        args.append("--demo")
    subprocess.run([*args, *init_args], check=True, capture_output=True, text=True)
    return serve_node(directory, port, http_port, prefix, serve_args=serve_args, env=env)


def serve_node(
    directory: Path,
    port: int,
    http_port: int,
    prefix: str,
    *,
    serve_args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> RunningNode:
    """``idnode serve`` of an initialised node directory on the given ports."""
    ports = {"IDNODE_SERVER_UDP_PORT": str(port), "IDNODE_SERVER_TCP_PORT": str(port),
             "IDNODE_SERVER_HTTP_PORT": str(http_port)}  # fmt: skip
    proc = subprocess.Popen(
        # one process unless a test asks for more: a write is then seen by the next request
        # at once (workers learn of each other's writes within 50 ms)
        [*IDNODE, "serve", str(directory), *one_worker_unless(serve_args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "IDNODE_LOG_FORMAT": "json", **ports, **(env or {})},
    )
    node = RunningNode(directory, "127.0.0.1", port, http_port, proc, prefix)
    wait_http(node.http_url, proc)
    return node


def one_worker_unless(serve_args: tuple[str, ...]) -> tuple[str, ...]:
    """``serve_args``, with ``--workers 1`` added unless they choose a number of workers
    (``idnode serve`` runs one worker per core by default)."""
    if any(a == "--workers" or a.startswith("--workers=") for a in serve_args):
        return serve_args
    return (*serve_args, "--workers", "1")


def stop_node(node: RunningNode) -> str:
    node.process.terminate()
    try:
        out, _ = node.process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        node.process.kill()
        out, _ = node.process.communicate()
    return out


@pytest.fixture(scope="module")
def running_node(tmp_path_factory) -> Iterator[RunningNode]:
    node = start_node(tmp_path_factory.mktemp("node"))
    yield node
    stop_node(node)
