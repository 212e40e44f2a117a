"""A small built-in timing sample for the report's performance section.

When no load-generator report (``idnode bench``) is given, the HTML page still shows how
fast the target answered: a few dozen sequential resolutions per transport, timed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from idnode.verify.conformance.context import Context, Skip
from idnode.verify.conformance.probes import Probe, ProbeError

SAMPLE_SIZE = 30


@dataclass
class TimingSample:
    """Latencies in seconds per transport, and how many requests got no answer."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def percentile(self, transport: str, p: float) -> float:
        values = sorted(self.latencies.get(transport, []))
        if not values:
            return 0.0
        k = min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))
        return values[k]

    def to_dict(self) -> dict:
        return {
            t: {
                "count": len(v),
                "failures": self.failures.get(t, 0),
                **{f"p{p}_ms": round(self.percentile(t, p) * 1000, 3) for p in (50, 90, 99)},
                "max_ms": round(max(v) * 1000, 3) if v else 0.0,
            }
            for t, v in self.latencies.items()
        }


async def timing_sample(probe: Probe, ctx: Context, n: int = SAMPLE_SIZE) -> TimingSample | None:
    try:
        handle = ctx.handle or ("0.NA/" + ctx.prefix if ctx.prefix else None)
    except Skip:
        return None
    if handle is None:
        return None
    sample = TimingSample()
    senders = []
    if probe.udp_addr:
        senders.append(("udp", lambda: probe.udp(ctx.resolution(handle))))
    if probe.tcp_addr:
        senders.append(("tcp", lambda: probe.tcp(ctx.resolution(handle))))
    if probe.http_url:
        senders.append(("http", lambda: probe.http("GET", "/api/handles/" + handle)))
    monotonic = ctx.clock.monotonic
    for name, send in senders:
        times: list[float] = []
        for _ in range(n):
            start = monotonic()
            try:
                await send()
            except ProbeError:
                sample.failures[name] = sample.failures.get(name, 0) + 1
                if sample.failures[name] >= 3:
                    break
                continue
            times.append(monotonic() - start)
        sample.latencies[name] = times
    probe.log = []
    return sample
