"""``idnode serve --workers 2``: shared ports, caches kept honest, a killed worker replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess

import httpx
import psutil
import pytest

from idnode import client
from idnode.codes import ResponseCode
from tests.conftest import IDNODE, eventually, start_node, stop_node


@pytest.fixture
def workers_node(tmp_path):
    node = start_node(tmp_path / "n", serve_args=("--workers", "2"))
    yield node.process, node.port, node.http_port, node.directory
    stop_node(node)
    assert node.process.returncode == 0


def _is_worker(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(p.cmdline())
    except psutil.Error:  # gone, or a zombie being reaped
        return False


def workers_of(proc) -> list[psutil.Process]:
    def two() -> list[psutil.Process] | None:
        kids = [p for p in psutil.Process(proc.pid).children() if _is_worker(p)]
        return kids if len(kids) == 2 else None

    return eventually(two, "two workers")


def resolve(port: int, handle: str):
    return asyncio.run(client.request_udp("127.0.0.1", port, client.resolution_request(handle)))


def test_workers_answer_and_see_each_others_writes(workers_node):
    proc, port, http_port, directory = workers_node
    assert len(workers_of(proc)) == 2
    # warm both workers' caches (the kernel spreads datagrams by source port)
    for _ in range(20):
        assert resolve(port, "20.500.123/demo-1").header.response_code == ResponseCode.SUCCESS
    # a write through one worker over TCP ...
    add = subprocess.run(
        [
            *IDNODE,
            "admin",
            "add-value",
            "20.500.123/demo-1",
            "--value",
            "7:DESC:changed",
            "--server",
            f"127.0.0.1:{port}",
            "--protocol",
            "tcp",
            "--id",
            "300:0.NA/20.500.123",
            "--key",
            str(directory / "admin_privkey.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert add.returncode == 0, add.stderr

    # ... is seen by every worker (other processes' writes are announced by polling): no
    # stale cached answer survives it
    def every_worker_sees_it() -> bool:
        return all(
            7 in {v.index for v in resolve(port, "20.500.123/demo-1").body.values}
            for _ in range(20)
        )

    eventually(every_worker_sees_it, "both workers to answer with the new value")
    body = httpx.get(f"http://127.0.0.1:{http_port}/api/handles/20.500.123/demo-1").json()
    assert 7 in {v["index"] for v in body["values"]}


def test_killed_worker_is_restarted(workers_node):
    proc, port, _, _ = workers_node
    first = workers_of(proc)
    os.kill(first[0].pid, signal.SIGKILL)
    eventually(
        lambda: first[0].pid not in {p.pid for p in workers_of(proc)}, "a replacement worker"
    )
    # the survivor answers while the new worker binds its sockets; then both do
    for _ in range(10):
        assert resolve(port, "20.500.123/demo-2").header.response_code == ResponseCode.SUCCESS
