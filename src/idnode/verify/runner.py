"""Several client processes, each with its own event loop, started together and merged.

One Python event loop saturates one core long before a node on several cores does, so the
generator runs ``processes`` of them (``spawn``ed: a fresh interpreter, no inherited loop
or sockets). Each opens its sockets, waits at a barrier so all start the clock together,
runs ``engine.run_load`` on uvloop when it is installed, and sends back ``Results`` as a
dict; the parent adds them up. With one process everything runs in the caller's process.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue as queue_mod
import traceback
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from idnode.verify.engine import LoadSpec, run_load
from idnode.verify.results import Results

START_GRACE = 60.0  # seconds for all processes to import, connect and reach the barrier


class LoadError(RuntimeError):
    """A client process failed; carries its traceback text."""


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop when importable (about twice the requests per core), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def uses_uvloop() -> bool:
    return loop_factory() is not asyncio.new_event_loop


def split(spec: LoadSpec, processes: int) -> list[LoadSpec]:
    """The share of each process: requests and rate divided (remainders to the first),
    concurrency per process as given, seeds distinct so processes ask for different keys."""
    parts = []
    for i in range(processes):
        requests = 0
        if spec.requests > 0:
            requests = spec.requests // processes + (1 if i < spec.requests % processes else 0)
            if requests == 0:
                continue
        parts.append(
            replace(
                spec,
                requests=requests,
                rate=spec.rate / processes,
                seed=spec.seed * 1000 + i,
            )
        )
    return parts


def _child(spec: LoadSpec, barrier: Any, out: Any) -> None:
    try:

        def ready() -> None:
            barrier.wait(START_GRACE)

        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            results = runner.run(run_load(spec, ready))
        out.put(("ok", results.to_dict()))
    except BaseException:  # noqa: BLE001 - everything goes back to the parent as text
        try:
            barrier.abort()
        finally:
            out.put(("error", traceback.format_exc()))


def run(spec: LoadSpec, processes: int) -> Results:
    """Run ``spec`` over ``processes`` client processes; the merged ``Results``."""
    parts = split(spec, max(1, processes))
    if len(parts) == 1:
        try:
            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                return runner.run(run_load(parts[0]))
        except (OSError, ValueError) as exc:
            raise LoadError(f"{type(exc).__name__}: {exc}") from exc
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(parts))
    out = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(p, barrier, out), daemon=True) for p in parts]
    for p in procs:
        p.start()
    merged = Results()
    failures: list[str] = []
    wait = START_GRACE + spec.duration + spec.timeout * 2 + 30
    try:
        for _ in procs:
            try:
                status, payload = out.get(timeout=wait)
            except queue_mod.Empty:
                failures.append("a client process sent no results in time")
                break
            if status == "ok":
                merged.merge(Results.from_dict(payload))
            else:
                failures.append(payload)
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join(5)
    if failures:
        raise LoadError("\n".join(failures))
    return merged
