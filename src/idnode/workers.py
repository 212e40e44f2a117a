"""``idnode serve --workers N``: N serving processes on the same ports, and their keeper.

Each worker is a whole ``serve()``: its own event loop, store connections and response
cache, its sockets bound with SO_REUSEPORT so the kernel spreads UDP datagrams, TCP
connections and HTTP connections across the workers. Workers share nothing in memory; the
store is the one truth, and its write announcements keep every worker's cache honest.

The parent only supervises: a worker that dies unexpectedly is started again (with a
back-off if it keeps dying), and SIGTERM/SIGINT are passed on so every worker finishes its
answers before the parent exits.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import time
from multiprocessing.context import SpawnProcess

from idnode.config import Config
from idnode.lifeline import die_with_parent
from idnode.runtime import Runtime

log = logging.getLogger("idnode.workers")

RESTART_BACKOFF = (0.1, 0.5, 1.0, 2.0, 5.0)  # seconds before restarting a crashing worker
STOP_GRACE = 10.0  # seconds workers get to finish after SIGTERM


def _worker_main(config: Config, number: int, runtime: Runtime) -> None:
    import asyncio

    from idnode.logs import setup_logging
    from idnode.serve import serve

    # a supervisor killed outright cannot stop us: the kernel does (SIGTERM, so we finish)
    parent = mp.parent_process()
    die_with_parent(parent.pid if parent is not None else None)
    setup_logging(config.log.level, config.log.format)
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    os.environ["IDNODE_WORKER"] = str(number)
    asyncio.run(serve(config, runtime, reuse_port=True))


class Supervisor:
    """Keeps ``count`` workers running until told to stop."""

    def __init__(self, config: Config, count: int, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime  # passed to every worker: the one clock of the node
        self.count = count
        self.ctx = mp.get_context("spawn")
        self.workers: dict[int, SpawnProcess] = {}
        self.failures: dict[int, int] = {}
        self.stopping = False

    def _start(self, number: int) -> None:
        proc = self.ctx.Process(
            target=_worker_main,
            args=(self.config, number, self.runtime),
            name=f"idnode-worker-{number}",
        )
        proc.start()
        self.workers[number] = proc
        log.info("worker started", extra={"worker": number, "pid": proc.pid})

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for number in range(self.count):
            self._start(number)
        monotonic = self.runtime.clock.monotonic
        started_at = {n: monotonic() for n in self.workers}
        while not self.stopping:
            time.sleep(0.2)
            for number, proc in list(self.workers.items()):
                if proc.is_alive() or self.stopping:
                    continue
                # a worker that lived a minute had a one-off crash: forget its history
                if monotonic() - started_at[number] > 60:
                    self.failures[number] = 0
                tries = self.failures.get(number, 0)
                self.failures[number] = tries + 1
                delay = RESTART_BACKOFF[min(tries, len(RESTART_BACKOFF) - 1)]
                log.warning(
                    "worker died; restarting",
                    extra={"worker": number, "exitcode": proc.exitcode, "after": delay},
                )
                time.sleep(delay)
                self._start(number)
                started_at[number] = monotonic()
        return self._shutdown()

    def _shutdown(self) -> int:
        for proc in self.workers.values():
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        monotonic = self.runtime.clock.monotonic
        deadline = monotonic() + STOP_GRACE
        for proc in self.workers.values():
            proc.join(max(0.0, deadline - monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        log.info("stopped")
        return 0


def worker_count(requested: int) -> int:
    """``0`` means one worker per core."""
    return requested if requested > 0 else (os.cpu_count() or 1)
