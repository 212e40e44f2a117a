"""What a run counts, kept per client process and merged exactly in the parent.

Every request issued ends in exactly one outcome: ``ok`` or one error kind, so
``sent == ok + sum(errors)`` per request kind, which the tests check. Latency is recorded
for ``ok`` answers only: a fast SERVER_BUSY must not make the node look quicker, so errors
are reported beside the percentiles, never folded into them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from idnode.verify.histogram import Histogram
from idnode.verify.workload import KINDS

OK = "ok"
TIMEOUT = "timeout"  # no answer within --timeout
CODE = "code"  # answered with another response code / HTTP status than expected
MALFORMED = "malformed"  # an answer that does not parse
WRONG_TYPE = "wrong_type"  # a typed query answered with values of other types
CONNECT = "connect"  # could not connect, or the connection broke mid-request
ERROR_KINDS = (TIMEOUT, CODE, MALFORMED, WRONG_TYPE, CONNECT)

SECOND = 1_000_000_000


@dataclass
class Results:
    """Counters of one run (or of several merged). Times are ns since the common start."""

    latency: Histogram = field(default_factory=Histogram)
    service: Histogram = field(default_factory=Histogram)  # from the actual send (rate mode)
    sent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    ok: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    timeline_ok: list[int] = field(default_factory=list)  # answers per second
    timeline_errors: list[int] = field(default_factory=list)
    elapsed_ns: int = 0  # start to last outcome
    samples: list[str] = field(default_factory=list)  # a few error messages, for humans

    def record(self, kind: str, outcome: str, latency_ns: int, at_ns: int) -> None:
        """One finished request: ``latency_ns`` counted only when ``outcome`` is ok."""
        second = at_ns // SECOND
        if outcome == OK:
            self.ok[kind] += 1
            self.latency.record(latency_ns)
            line = self.timeline_ok
        else:
            self.errors[outcome] += 1
            line = self.timeline_errors
        if second >= len(line):
            line.extend([0] * (second + 1 - len(line)))
        line[second] += 1
        if at_ns > self.elapsed_ns:
            self.elapsed_ns = at_ns

    def note(self, message: str) -> None:
        if len(self.samples) < 5 and message not in self.samples:
            self.samples.append(message)

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    @property
    def total_ok(self) -> int:
        return sum(self.ok.values())

    @property
    def total_errors(self) -> int:
        return sum(self.errors.values())

    @property
    def throughput(self) -> float:
        """Answered-as-expected requests per second over the run."""
        return self.total_ok / (self.elapsed_ns / SECOND) if self.elapsed_ns else 0.0

    def merge(self, other: Results) -> Results:
        self.latency.merge(other.latency)
        self.service.merge(other.service)
        for mine, theirs in ((self.sent, other.sent), (self.ok, other.ok)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        for k, v in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v
        for mine, theirs in (
            (self.timeline_ok, other.timeline_ok),
            (self.timeline_errors, other.timeline_errors),
        ):
            if len(theirs) > len(mine):
                mine.extend([0] * (len(theirs) - len(mine)))
            for i, v in enumerate(theirs):
                mine[i] += v
        self.elapsed_ns = max(self.elapsed_ns, other.elapsed_ns)
        for s in other.samples:
            self.note(s)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency": self.latency.to_dict(),
            "service": self.service.to_dict(),
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "timeline_ok": self.timeline_ok,
            "timeline_errors": self.timeline_errors,
            "elapsed_ns": self.elapsed_ns,
            "samples": self.samples,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Results:
        return cls(
            latency=Histogram.from_dict(data["latency"]),
            service=Histogram.from_dict(data["service"]),
            sent=dict(data["sent"]),
            ok=dict(data["ok"]),
            errors=dict(data["errors"]),
            timeline_ok=list(data["timeline_ok"]),
            timeline_errors=list(data["timeline_errors"]),
            elapsed_ns=data["elapsed_ns"],
            samples=list(data["samples"]),
        )
