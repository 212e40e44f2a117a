"""A throw-away node for a run: init it with N identifiers, serve it on free loopback ports.

So that ``make bench`` reproduces a figure in one command on any machine. The identifiers
are ``PREFIX/item-0 .. PREFIX/item-N-1`` with a URL (index 1) and a DESC (index 2) value,
exactly the key set ``--prefix P --count N`` generates. Seeding goes through ``idnode init``
and ``idnode load`` (the commands an operator uses) and is recorded in ``bench-seed.json``,
so a second run over the same directory reuses the store instead of loading it again (ten
million records take a while). A directory holding anything else is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from idnode.runtime import Clock
from idnode.verify.ports import free_port

IDNODE = [sys.executable, "-m", "idnode"]
MARKER = "bench-seed.json"
HOST = "127.0.0.1"


class PrepareError(RuntimeError):
    """Seeding or starting the node failed; the message says which command and why."""


def _run(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PrepareError(
            f"{' '.join(args[2:])} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
        )


def record_line(prefix: str, i: int) -> bytes:
    return (
        orjson.dumps(
            {
                "handle": f"{prefix}/item-{i}",
                "values": [
                    {"index": 1, "type": "URL", "data": f"https://example.org/item/{i}"},
                    {"index": 2, "type": "DESC", "data": "bench item"},
                ],
            }
        )
        + b"\n"
    )


def seed(directory: Path, prefix: str, count: int, *, store: str | None = None) -> bool:
    """Make ``directory`` a node homing ``prefix`` with ``count`` identifiers, in ``store``
    (a store URL for ``idnode init``; None: its SQLite default).

    Returns False when it already was one (same prefix, count and store), True when seeded
    now.
    """
    marker = directory / MARKER
    want: dict[str, object] = {"prefix": prefix, "count": count}
    if store is not None:
        want["store"] = store
    if marker.exists():
        have = json.loads(marker.read_text())
        if have == want:
            return False
        raise PrepareError(f"{directory} was seeded with {have}, not {want}: use another directory")
    if directory.exists() and any(directory.iterdir()):
        raise PrepareError(f"{directory} exists and is not a bench node: refusing to touch it")
    port = free_port()
    _run(
        [
            *IDNODE,
            "init",
            str(directory),
            "--name",
            "bench-node",
            "--prefix",
            prefix,
            "--host",
            HOST,
            "--udp-port",
            str(port),
            "--tcp-port",
            str(port),
            "--http-port",
            str(free_port()),
            *(["--store", store] if store is not None else []),
        ]
    )
    records = directory / "bench-records.jsonl"
    try:
        with records.open("wb") as fh:
            for i in range(count):
                fh.write(record_line(prefix, i))
        _run([*IDNODE, "load", str(directory), str(records)])
    finally:
        records.unlink(missing_ok=True)
    marker.write_text(json.dumps(want) + "\n")
    return True


@dataclass
class ServedNode:
    directory: Path
    host: str
    port: int  # UDP and TCP
    http_port: int
    process: subprocess.Popen

    def target(self, protocol: str) -> tuple[str, int]:
        return self.host, self.http_port if protocol == "http" else self.port


def wait_ready(
    url: str, process: subprocess.Popen, log: Path, clock: Clock, timeout: float = 60.0
) -> None:
    """Poll ``url``/healthz until it answers 200; ``timeout`` seconds on ``clock``."""
    deadline = clock.monotonic() + timeout
    while clock.monotonic() < deadline:
        if process.poll() is not None:
            raise PrepareError(
                f"idnode serve exited with {process.returncode}:\n"
                f"{log.read_text(errors='replace')[-4000:]}"
            )
        try:
            if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise PrepareError(f"idnode serve at {url} did not become ready in {timeout:g}s")


def _one_worker_unless(serve_args: Sequence[str]) -> list[str]:
    """One serving process unless ``--serve-arg=--workers=N`` says otherwise: the generator
    shares the machine, and the figures in docs/performance.md are of one worker."""
    if any(a == "--workers" or a.startswith("--workers=") for a in serve_args):
        return list(serve_args)
    return [*serve_args, "--workers", "1"]


@contextmanager
def served(
    directory: Path, serve_args: Sequence[str] = (), *, clock: Clock
) -> Iterator[ServedNode]:
    """``idnode serve directory`` on free loopback ports for the duration of the block;
    its log goes to ``directory/bench-serve.log``. ``clock`` times the wait for it to be
    ready."""
    port, http_port = free_port(), free_port()
    log = directory / "bench-serve.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [
                *IDNODE,
                "serve",
                str(directory),
                "--host",
                HOST,
                "--udp-port",
                str(port),
                "--tcp-port",
                str(port),
                "--http-port",
                str(http_port),
                *_one_worker_unless(serve_args),
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "IDNODE_LOG_FORMAT": "json"},
        )
    node = ServedNode(directory, HOST, port, http_port, proc)
    try:
        wait_ready(f"http://{HOST}:{http_port}", proc, log, clock)
        yield node
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
