"""Runs the checks: per-check timeouts, a verdict per check, fixtures and their cleanup.

Whatever a target does -- refuse connections, answer garbage, hang -- every selected check
ends with a verdict and a message, and the run always reaches the cleanup of the test
identifiers it wrote.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from idnode.errors import IdnodeError
from idnode.runtime import Runtime
from idnode.verify.conformance import fixtures
from idnode.verify.conformance.catalogue import MUST, CheckSpec
from idnode.verify.conformance.context import CheckFailed, Context, Credentials, Skip
from idnode.verify.conformance.probes import Probe, ProbeError
from idnode.verify.conformance.sample import TimingSample, timing_sample

PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
FIXTURE_TIMEOUT = 60.0


@dataclass
class Target:
    udp: tuple[str, int] | None = None
    tcp: tuple[str, int] | None = None
    http: str | None = None

    def describe(self) -> dict[str, str | None]:
        return {
            "udp": f"{self.udp[0]}:{self.udp[1]}" if self.udp else None,
            "tcp": f"{self.tcp[0]}:{self.tcp[1]}" if self.tcp else None,
            "http": self.http,
        }


@dataclass
class Options:
    target: Target
    prefix: str | None = None
    handle: str | None = None
    creds: Credentials | None = None
    timeout: float = 2.0  # per answer
    check_timeout: float = 30.0  # per check
    bound: float = 1.0  # timing checks
    sample: bool = True  # run the small timing sample for the performance section
    idis: bool = False  # the target serves the IDIS SDK: run the idis checks
    # the clock and random source of the run, from the caller (the command passes the
    # process's real ones): the suite reads neither from the machine itself
    runtime: Runtime = field(kw_only=True)


@dataclass
class Result:
    spec: CheckSpec
    status: str
    message: str = ""
    expected: str = ""
    got: str = ""
    exchanges: list[dict[str, str]] = field(default_factory=list)
    duration: float = 0.0

    @property
    def blocking(self) -> bool:
        """A failure that makes the run fail: a must-check that failed or errored."""
        return self.spec.severity == MUST and self.status in (FAILED, ERROR)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.spec.id,
            "title": self.spec.title,
            "reference": self.spec.reference,
            "severity": self.spec.severity,
            "category": self.spec.category,
            "status": self.status,
            "message": self.message,
            "expected": self.expected,
            "got": self.got,
            "exchanges": self.exchanges,
            "duration_s": round(self.duration, 4),
        }


@dataclass
class Report:
    target: Target
    results: list[Result]
    started: float
    duration: float
    run_id: str
    fixture_error: str | None = None
    cleanup_left: list[str] = field(default_factory=list)
    timing: TimingSample | None = None

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def ok(self) -> bool:
        return not any(r.blocking for r in self.results)


def _missing(spec: CheckSpec, opts: Options) -> str | None:
    have = {
        "udp": opts.target.udp,
        "tcp": opts.target.tcp,
        "http": opts.target.http,
        "admin": opts.creds,
        "idis": opts.idis,
    }
    absent = [n for n in spec.needs if not have[n]]
    if not absent:
        return None
    flags = {"udp": "--udp", "tcp": "--tcp", "http": "--http", "admin": "--admin and a key",
             "idis": "--idis"}  # fmt: skip
    return "needs " + ", ".join(flags[n] for n in absent)


async def run_check(spec: CheckSpec, ctx: Context, opts: Options) -> Result:
    """One check to a verdict; the probe log of this check becomes its exchanges."""
    reason = _missing(spec, opts)
    if reason:
        return Result(spec, SKIPPED, reason)
    ctx.probe.log = []
    start = ctx.clock.monotonic()
    result = Result(spec, PASSED)
    try:
        await asyncio.wait_for(spec.fn(ctx), opts.check_timeout)
    except CheckFailed as exc:
        result = Result(spec, FAILED, str(exc), exc.expected, exc.got)
    except Skip as exc:
        result = Result(spec, SKIPPED, str(exc))
    except ProbeError as exc:
        result = Result(spec, FAILED, str(exc), "an answer", str(exc))
    except TimeoutError:
        msg = f"the check did not finish within {opts.check_timeout}s"
        result = Result(spec, FAILED, msg, "an answer", msg)
    except IdnodeError as exc:  # e.g. a challenge our signer refuses to answer
        result = Result(spec, FAILED, str(exc), "a usable answer", str(exc))
    except Exception as exc:  # a bug in the check, or an answer no branch foresaw
        result = Result(spec, ERROR, f"{type(exc).__name__}: {exc}")
    result.duration = ctx.clock.monotonic() - start
    if result.status in (FAILED, ERROR):
        result.exchanges = [
            {"channel": e.channel, "sent": e.sent, "received": e.received}
            for e in ctx.probe.log[-4:]
        ]
    return result


async def run(
    checks: list[CheckSpec],
    opts: Options,
    progress: Any = None,
    preset: fixtures.Fixtures | None = None,
) -> Report:
    """Run ``checks`` against ``opts.target``; ``progress(result)`` is called after each.

    ``preset`` fixtures (written earlier, e.g. straight to the server behind a test proxy)
    replace the ones the run would write; they are not cleaned up here.
    """
    t, clock = opts.target, opts.runtime.clock
    probe = Probe(t.udp, t.tcp, t.http, opts.timeout, clock=clock)
    ctx = Context(
        probe,
        opts.prefix,
        opts.handle,
        opts.creds,
        opts.bound,
        clock=clock,
        random=opts.runtime.random,
    )
    started = clock()
    begun = clock.monotonic()
    wants_fixtures = (
        opts.creds is not None and opts.prefix and any("admin" in c.needs for c in checks)
    )
    if preset is not None:
        ctx.fixtures = preset
    elif wants_fixtures:
        try:
            ctx.fixtures = await asyncio.wait_for(fixtures.setup(ctx), FIXTURE_TIMEOUT)
        except Exception as exc:
            ctx.fixture_error = f"could not write test identifiers under {opts.prefix}: {exc}"
    results = []
    try:
        for spec in checks:
            result = await run_check(spec, ctx, opts)
            results.append(result)
            if progress is not None:
                progress(result)
    finally:
        left: list[str] = []
        if ctx.created and opts.creds is not None:
            try:
                left = await asyncio.wait_for(fixtures.cleanup(ctx), FIXTURE_TIMEOUT)
            except Exception as exc:
                left = [f"cleanup did not finish: {exc}"]
    timing = None
    if opts.sample:
        timing = await timing_sample(probe, ctx)
    return Report(
        t,
        results,
        started,
        clock.monotonic() - begun,
        ctx.run_id,
        ctx.fixture_error,
        left,
        timing,
    )
