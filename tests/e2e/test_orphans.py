"""Issue 15, item 7: children die with their parent.

``kill -9`` of the worker supervisor left its workers serving (and of an import, its parse
process running: three of 66-113 MiB were alive 25 minutes later). Now each child asks the
kernel for a signal when its parent dies (``idnode.lifeline``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from tests.conftest import IDNODE, RunningNode, eventually, free_port, stop_node, wait_http
from tests.transport.served import PREFIX, seeded_node_dir

ROOT = Path(__file__).resolve().parents[2]


def _gone(pids: list[int]) -> bool:
    """Every one of ``pids`` has ended (a zombie nobody reaps has ended too)."""
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


def _kill_parent_and_watch(parent: subprocess.Popen, children: list[int]) -> None:
    try:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=30)
        eventually(lambda: _gone(children), "the children to die with their parent")
    finally:
        for pid in children:  # never leave a process behind, whatever happened
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_workers_die_with_a_killed_supervisor(tmp_path) -> None:
    directory = seeded_node_dir(tmp_path / "node")
    port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "IDNODE_SERVER_UDP_PORT": str(port),
        "IDNODE_SERVER_TCP_PORT": str(port),
        "IDNODE_SERVER_HTTP_PORT": str(http_port),
    }
    proc = subprocess.Popen(
        [*IDNODE, "serve", str(directory), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    node = RunningNode(directory, "127.0.0.1", port, http_port, proc, PREFIX)
    try:
        wait_http(node.http_url, proc)
        supervisor = psutil.Process(proc.pid)
        eventually(lambda: len(supervisor.children()) >= 2, "two workers")
        children = [c.pid for c in supervisor.children(recursive=True)]
    except BaseException:
        stop_node(node)
        raise
    _kill_parent_and_watch(proc, children)


IMPORT_SCRIPT = """
import asyncio, sys
from pathlib import Path
from idnode.runtime import system
from tests.registry.conftest import node_env, row

async def main(tmp):
    async with node_env(Path(tmp), system()) as env:
        await env.allocated()
        reg = env.reg
        reg.imports.parse_process_min_bytes = 0  # parse in a child process
        src = env.csv([row(i) for i in range(5000)])
        job = await reg.imports.create(reg.operator, "t", "88.123.4567", src, "csv", batch_size=10)

        async def stall(*args):
            print("committing", flush=True)
            await asyncio.Event().wait()  # the import is busy until it is killed

        reg.imports._commit = stall
        await reg.imports.run(job["id"])

asyncio.run(main(sys.argv[1]))
"""


def test_an_import_parse_process_dies_with_a_killed_import(tmp_path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", IMPORT_SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "committing"
        children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        assert children, "the import parses in a child process"
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    _kill_parent_and_watch(proc, children)
