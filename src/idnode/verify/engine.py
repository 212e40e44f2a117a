"""The two ways of offering load, inside one event loop of one client process.

* closed loop: ``concurrency`` requests outstanding; each answer releases the next request.
  Measures what the node sustains, but a stalled node also stalls the generator, so its
  latencies hide the queue a real client population would see.
* fixed rate (open loop): request ``i`` is due at ``start + i / rate`` whatever happened to
  earlier ones, and its latency is measured from that *intended* time, not from when it was
  actually sent. A node (or generator) that falls behind therefore shows the delay every
  waiting client would have seen: no coordinated omission (Gil Tene; wrk2 does the same).
  ``service`` keeps the send-to-answer time alongside, to show the difference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from idnode.runtime import Clock
from idnode.verify.channel import Channel
from idnode.verify.load_http import http_channel
from idnode.verify.load_tcp import tcp_channel
from idnode.verify.load_udp import UdpChannel
from idnode.verify.results import OK, Results
from idnode.verify.workload import KeySet, Plan

CLOSED, RATE = "closed", "rate"
PROTOCOLS = ("udp", "tcp", "http")


@dataclass(frozen=True)
class LoadSpec:
    """Everything one client process needs; picklable, so it crosses ``spawn``.

    ``clock`` times every request (its ``monotonic_ns``): the caller's, so the generator
    reads no clock of its own (``idnode.runtime``); each client process uses the copy it
    was sent, and only differences of its readings are recorded."""

    protocol: str
    host: str
    port: int
    keys: KeySet
    mix: dict[str, int]
    clock: Clock
    mode: str = CLOSED
    concurrency: int = 32  # closed loop: requests outstanding in this process
    rate: float = 0.0  # fixed rate: requests a second from this process
    requests: int = 0  # cap for this process; 0: only the duration bounds the run
    duration: float = 10.0
    timeout: float = 2.0
    connections: int = 0  # TCP/HTTP; 0: concurrency / pipeline (closed) or 64 (rate)
    pipeline: int = 1  # HTTP: requests in flight per connection (HTTP/1.1 pipelining)
    warmup: float = 0.0  # seconds of closed-loop load before the recorded run, results dropped
    udp_sockets: int = 4
    max_outstanding: int = 10_000  # fixed rate: beyond this the pacer waits (and it shows)
    typed_type: str = "URL"
    seed: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    def pool_size(self) -> int:
        """TCP/HTTP connections: as given, else just enough slots for every worker of the
        closed loop (``pipeline`` slots per HTTP connection), or 64 at a fixed rate."""
        if self.connections > 0:
            return self.connections
        if self.mode != CLOSED:
            return 64
        depth = max(1, self.pipeline) if self.protocol == "http" else 1
        return -(-self.concurrency // depth)  # ceiling division


def make_channel(spec: LoadSpec) -> Channel:
    if spec.protocol == "udp":
        return UdpChannel(
            spec.host,
            spec.port,
            timeout=spec.timeout,
            clock=spec.clock,
            sockets=spec.udp_sockets,
        )
    if spec.protocol == "http":  # the only protocol that pipelines
        return http_channel(
            spec.host,
            spec.port,
            connections=spec.pool_size(),
            timeout=spec.timeout,
            clock=spec.clock,
            pipeline=spec.pipeline,
        )
    if spec.protocol != "tcp":
        raise ValueError(f"unknown protocol {spec.protocol!r}: use one of {PROTOCOLS}")
    return tcp_channel(
        spec.host,
        spec.port,
        connections=spec.pool_size(),
        timeout=spec.timeout,
        clock=spec.clock,
    )


async def run_load(spec: LoadSpec, ready: Callable[[], None] | None = None) -> Results:
    """Open the channel, call ``ready`` (the cross-process start barrier), then drive load
    until the request cap or the duration is reached and every answer is in."""
    channel = make_channel(spec)
    await channel.start()
    plan = Plan(spec.keys, spec.mix, spec.typed_type, spec.seed)
    if spec.warmup > 0:  # fill the node's caches (and ours) before anything is recorded
        await _warm_up(spec, channel, plan)
    if ready is not None:
        ready()
    results = Results()
    start = spec.clock.monotonic_ns()
    stop = start + int(spec.duration * 1e9)
    cap = spec.requests if spec.requests > 0 else 1 << 62
    sweeper = asyncio.create_task(_sweep(spec, channel))
    try:
        if spec.mode == CLOSED:
            await _closed(spec, channel, plan, results, start, stop, cap)
        elif spec.mode == RATE:
            await _fixed_rate(spec, channel, plan, results, start, stop, cap)
        else:
            raise ValueError(f"unknown mode {spec.mode!r}: use {CLOSED} or {RATE}")
    finally:
        sweeper.cancel()
        await channel.close()
    return results


async def _warm_up(spec: LoadSpec, channel: Channel, plan: Plan) -> None:
    start = spec.clock.monotonic_ns()
    stop = start + int(spec.warmup * 1e9)
    sweeper = asyncio.create_task(_sweep(spec, channel))
    try:
        await _closed(spec, channel, plan, Results(), start, stop, 1 << 62)
    finally:
        sweeper.cancel()


async def _sweep(spec: LoadSpec, channel: Channel) -> None:
    """Time out overdue requests a few times per ``spec.timeout``."""
    every, now_ns = min(0.1, spec.timeout / 4), spec.clock.monotonic_ns
    while True:
        await asyncio.sleep(every)
        channel.sweep(now_ns())


async def _closed(
    spec: LoadSpec, channel: Channel, plan: Plan, results: Results, start: int, stop: int, cap: int
) -> None:
    issued = 0
    clock = spec.clock.monotonic_ns  # bound once: read per request

    async def worker() -> None:
        nonlocal issued
        while issued < cap and clock() < stop:
            issued += 1
            op = plan.next()
            results.sent[op.kind] += 1
            sent = clock()
            outcome, note = await channel.call(op)
            now = clock()
            results.record(op.kind, outcome, now - sent, now - start)
            if note is not None:
                results.note(note)

    await asyncio.gather(*(worker() for _ in range(max(1, spec.concurrency))))


async def _fixed_rate(
    spec: LoadSpec, channel: Channel, plan: Plan, results: Results, start: int, stop: int, cap: int
) -> None:
    if spec.rate <= 0:
        raise ValueError("fixed-rate mode needs a positive rate")
    interval = 1e9 / spec.rate
    clock = spec.clock.monotonic_ns  # bound once: read per request
    slots = asyncio.Semaphore(spec.max_outstanding)
    tasks: set[asyncio.Task] = set()

    async def one(op, intended: int) -> None:
        try:
            sent = clock()
            outcome, note = await channel.call(op)
            now = clock()
            results.record(op.kind, outcome, now - intended, now - start)
            if outcome == OK:
                results.service.record(now - sent)
            if note is not None:
                results.note(note)
        finally:
            slots.release()

    i = 0
    while i < cap:
        intended = start + int(i * interval)
        if intended >= stop:
            break
        now = clock()
        if intended > now:
            await asyncio.sleep((intended - now) / 1e9)
            continue
        await slots.acquire()
        op = plan.next()
        results.sent[op.kind] += 1
        task = asyncio.create_task(one(op, intended))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
        if i % 64 == 0:
            await asyncio.sleep(0)  # let answers in while catching up on a backlog
    if tasks:
        await asyncio.gather(*tasks)
