"""Timing sanity: answers arrive within a bound (``--bound``, 1 s by default).

Not a benchmark (that is ``idnode bench``): a server that needs seconds for one resolution
on an idle line, or drops answers under a burst of fifty, is broken for every client. Only
proper answers count: a fast garbage reply is not a fast answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from idnode.codes import OpCode, ResponseCode
from idnode.verify.conformance.catalogue import check
from idnode.verify.conformance.context import Context
from idnode.verify.conformance.probes import ProbeError
from idnode.wire import bodies

REF = "timing sanity"
SAMPLES = 8
OK = ResponseCode.SUCCESS


async def _sample(ctx: Context, send: Callable[[], Awaitable[None]], what: str) -> None:
    """``send`` raises (failing the check) unless a proper answer came back."""
    times = []
    allowed_slow = SAMPLES - int(SAMPLES * 0.75)
    monotonic = ctx.clock.monotonic
    for _ in range(SAMPLES):
        start = monotonic()
        await send()
        times.append(monotonic() - start)
        if sum(t > ctx.bound for t in times) > allowed_slow:
            break  # the verdict is in; a slow server need not be waited on further
    slow = sum(t > ctx.bound for t in times)
    ctx.expect(
        slow <= allowed_slow,
        f"{what}: 75% of {SAMPLES} answers within {ctx.bound:.3f}s",
        "times " + ", ".join(f"{t * 1000:.0f}ms" for t in times),
    )


@check("TIME-001", "UDP resolutions are answered within the bound", REF, category="timing")
async def udp_time(ctx: Context) -> None:
    async def send() -> None:
        ctx.expect_code(await ctx.probe.udp(ctx.resolution(ctx.read_handle)), OK)

    await _sample(ctx, send, "UDP")


@check(
    "TIME-002",
    "TCP resolutions are answered within the bound",
    REF,
    category="timing",
    needs=("tcp",),
)
async def tcp_time(ctx: Context) -> None:
    async def send() -> None:
        ctx.expect_code(await ctx.probe.tcp(ctx.resolution(ctx.read_handle)), OK)

    await _sample(ctx, send, "TCP")


@check(
    "TIME-003",
    "HTTP resolutions are answered within the bound",
    REF,
    category="timing",
    needs=("http",),
)
async def http_time(ctx: Context) -> None:
    async def send() -> None:
        resp = await ctx.probe.http("GET", "/api/handles/" + ctx.read_handle)
        ctype = resp.headers.get("content-type", "")
        ctx.expect(
            resp.status_code == 200 and ctype.startswith("application/json"),
            "HTTP 200 with a JSON body",
            f"HTTP {resp.status_code} {ctype!r} {resp.text[:60]!r}",
        )

    await _sample(ctx, send, "HTTP")


@check("TIME-004", "Get-siteinfo is answered within the bound", REF, category="timing")
async def siteinfo_time(ctx: Context) -> None:
    async def send() -> None:
        msg = ctx.request(OpCode.GET_SITEINFO, bodies.GetSiteInfoRequest())
        ctx.expect_code(await ctx.probe.udp(msg), OK)

    await _sample(ctx, send, "get-siteinfo")


@check(
    "TIME-005",
    "A burst of 50 concurrent UDP resolutions is answered in full",
    REF,
    category="timing",
)
async def burst(ctx: Context) -> None:
    problems: list[str] = []

    async def one() -> bool:
        try:
            reply = await ctx.probe.udp(ctx.resolution(ctx.read_handle), timeout=3 * ctx.bound)
        except ProbeError as exc:
            problems.append(str(exc))
            return False
        ok = reply.message is not None and reply.message.header.response_code == OK
        if not ok:
            problems.append(reply.error or "a response code other than SUCCESS")
        return ok

    ok = sum(await asyncio.gather(*(one() for _ in range(50))))
    first = f" (first problem: {problems[0]})" if problems else ""
    ctx.expect(
        ok == 50, f"50 SUCCESS answers within {3 * ctx.bound:.3f}s each", f"{ok} of 50{first}"
    )
