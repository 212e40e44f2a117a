"""``idnode bench``: the load generator's command line (a Typer sub-app, ``bench_app``).

Two commands:

* ``idnode bench run``: load one or more targets (``--udp``, ``--tcp``, ``--http``), or a
  throw-away node it seeds and serves itself (``--seed-node DIR``), print a table and write
  ``--json-out`` / ``--html-out``;
* ``idnode bench prepare DIR``: only seed a node directory (for big key sets, once).

The reproduce line in the reports is rebuilt from the resolved options (defaults filled
in, processes counted), not copied from ``sys.argv``, so it reruns the same thing however
the command was first spelled. Exit codes: 0 ran, 1 the run failed (or ``--strict`` and
errors were counted), 2 usage (bad option, remote target without ``--allow-remote``).
"""

from __future__ import annotations

import os
import shlex
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from idnode import cli_common
from idnode.verify import prepare as prep
from idnode.verify.engine import CLOSED, PROTOCOLS, RATE, LoadSpec
from idnode.verify.report import Run, document, environment, print_table, write_html, write_json
from idnode.verify.runner import LoadError, run, uses_uvloop
from idnode.verify.targets import TargetError, check_allowed, parse_target
from idnode.verify.workload import KeySet, parse_mix

bench_app = typer.Typer(
    help="Load generator: resolution over UDP, TCP and HTTP, with latency percentiles.",
    no_args_is_help=True,
)
console = Console(width=None if Console().is_terminal else 160)
USAGE = 2
DEFAULT_PREFIX = "20.500.777"
DEFAULT_COUNT = 10_000
DEFAULT_MIX = "hit=80,miss=15,typed=5"


def _usage(message: str) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(USAGE)


def _protocols(text: str | None, given: dict[str, str | None], seeded: bool) -> list[str]:
    if text:
        chosen = [p.strip().lower() for p in text.split(",") if p.strip()]
        bad = [p for p in chosen if p not in PROTOCOLS]
        if bad:
            raise _usage(f"unknown protocol {', '.join(bad)}: use {', '.join(PROTOCOLS)}")
        return chosen
    if seeded:
        return list(PROTOCOLS)
    chosen = [p for p in PROTOCOLS if given[p]]
    if not chosen:
        raise _usage("give a target (--udp, --tcp, --http) or --seed-node DIR")
    return chosen


@bench_app.command("run")
def run_cmd(
    udp: Annotated[str | None, typer.Option(help="UDP target host:port")] = None,
    tcp: Annotated[str | None, typer.Option(help="TCP target host:port")] = None,
    http: Annotated[str | None, typer.Option(help="HTTP target URL or host:port")] = None,
    protocol: Annotated[
        str | None, typer.Option(help="comma list of udp,tcp,http (default: targets given)")
    ] = None,
    seed_node: Annotated[
        Path | None,
        typer.Option(help="seed this directory with --count identifiers and serve it"),
    ] = None,
    serve_arg: Annotated[
        list[str], typer.Option(help="extra argument for `idnode serve` (repeatable)")
    ] = [],  # noqa: B006
    mode: Annotated[str, typer.Option(help="closed (N outstanding) or rate (fixed rate)")] = CLOSED,
    concurrency: Annotated[int, typer.Option(help="closed loop: outstanding per process")] = 64,
    rate: Annotated[float, typer.Option(help="fixed rate: requests a second, in all")] = 0.0,
    processes: Annotated[int, typer.Option(help="client processes (default: cores)")] = 0,
    requests: Annotated[int, typer.Option(help="cap on requests in all (0: none)")] = 0,
    duration: Annotated[float, typer.Option(help="cap on seconds of load")] = 10.0,
    timeout: Annotated[float, typer.Option(help="seconds before a request is a timeout")] = 2.0,
    connections: Annotated[
        int,
        typer.Option(help="TCP/HTTP connections per process (0: concurrency/pipeline, or 64)"),
    ] = 0,
    pipeline: Annotated[
        int,
        typer.Option(
            help="HTTP: requests in flight per connection (HTTP/1.1 pipelining; 1: none); "
            "ignored for udp and tcp"
        ),
    ] = 1,
    udp_sockets: Annotated[int, typer.Option(help="UDP sockets per process")] = 4,
    warmup: Annotated[
        float,
        typer.Option(help="seconds of unrecorded closed-loop load first (warms caches)"),
    ] = 0.0,
    mix: Annotated[str, typer.Option(help="weights of hit, miss, typed")] = DEFAULT_MIX,
    typed_type: Annotated[str, typer.Option(help="value type typed queries ask for")] = "URL",
    keys: Annotated[Path | None, typer.Option(help="file of handles, one a line")] = None,
    prefix: Annotated[str, typer.Option(help="generated keys PREFIX/item-N")] = DEFAULT_PREFIX,
    count: Annotated[int, typer.Option(help="generated keys: how many")] = DEFAULT_COUNT,
    seed: Annotated[int, typer.Option(help="random seed of the request stream")] = 1,
    json_out: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
    html_out: Annotated[Path | None, typer.Option(help="write the HTML report here")] = None,
    allow_remote: Annotated[
        bool, typer.Option(help="allow targets that are not loopback addresses")
    ] = False,
    strict: Annotated[bool, typer.Option(help="exit 1 if any request failed")] = False,
) -> None:
    """Drive load and report latency percentiles, throughput and errors."""
    given = {"udp": udp, "tcp": tcp, "http": http}
    if seed_node is not None and any(given.values()):
        raise _usage("--seed-node serves its own node: give no --udp/--tcp/--http with it")
    chosen = _protocols(protocol, given, seed_node is not None)
    if mode not in (CLOSED, RATE):
        raise _usage(f"--mode {mode}: use {CLOSED} or {RATE}")
    if mode == RATE and rate <= 0:
        raise _usage("--mode rate needs --rate > 0")
    if duration <= 0 or timeout <= 0 or concurrency <= 0 or requests < 0:
        raise _usage("--duration, --timeout and --concurrency must be positive")
    if pipeline < 1:
        raise _usage("--pipeline must be at least 1 (1: no pipelining)")
    if warmup < 0:
        raise _usage("--warmup must not be negative")
    try:
        weights = parse_mix(mix)
        keyset = KeySet.from_file(keys) if keys else KeySet.generated(prefix, count)
    except (ValueError, OSError) as exc:
        raise _usage(str(exc)) from None
    if seed_node is not None and keys is not None:
        raise _usage("--seed-node loads PREFIX/item-N: use --prefix/--count, not --keys")
    nproc = processes if processes > 0 else (os.cpu_count() or 1)

    targets: dict[str, tuple[str, int]] = {}
    if seed_node is None:
        for p in chosen:
            if not given[p]:
                raise _usage(f"--protocol {p} needs --{p}")
            try:
                host, port = parse_target(given[p], p)  # type: ignore[arg-type]
                check_allowed(host, allow_remote)
            except TargetError as exc:
                raise _usage(str(exc)) from None
            targets[p] = (host, port)

    command = _reproduce(locals(), chosen, nproc)
    clock = cli_common.RUNTIME.clock  # the process's real clock: the generator reads none
    runs: list[Run] = []
    with ExitStack() as stack:
        if seed_node is not None:
            try:
                if prep.seed(seed_node, prefix, count):
                    console.print(f"seeded {seed_node} with {count:,} identifiers {prefix}/item-N")
                node = stack.enter_context(prep.served(seed_node, serve_arg, clock=clock))
            except prep.PrepareError as exc:
                console.print(f"[red]error:[/] {exc}")
                raise typer.Exit(1) from None
            targets = {p: node.target(p) for p in chosen}
        for p in chosen:
            host, port = targets[p]
            spec = LoadSpec(
                protocol=p,
                host=host,
                port=port,
                keys=keyset,
                mix=weights,
                clock=clock,
                mode=mode,
                concurrency=concurrency,
                rate=rate,
                requests=requests,
                duration=duration,
                timeout=timeout,
                connections=connections,
                pipeline=pipeline,
                warmup=warmup,
                udp_sockets=udp_sockets,
                typed_type=typed_type,
                seed=seed,
            )
            piped = f", pipeline {pipeline}" if p == "http" and pipeline > 1 else ""
            console.print(f"[bold]{p}[/] {host}:{port} {mode}{piped}, {nproc} processes ...")
            try:
                runs.append(Run(spec, nproc, run(spec, nproc)))
            except LoadError as exc:
                console.print(f"[red]error:[/] {p} run failed:\n{exc}")
                raise typer.Exit(1) from None
    doc = document(command, runs, environment(uses_uvloop(), clock))
    print_table(console, doc)
    if json_out is not None:
        write_json(json_out, doc)
        console.print(f"JSON report: {json_out}")
    if html_out is not None:
        write_html(html_out, doc)
        console.print(f"HTML report: {html_out}")
    console.print(f"reproduce: {command}", markup=False, highlight=False, soft_wrap=True)
    if strict and any(r.results.total_errors for r in runs):
        raise typer.Exit(1)


def _reproduce(opts: dict, chosen: list[str], nproc: int) -> str:
    """The canonical ``idnode bench run`` line for these (resolved) options."""
    args = ["idnode", "bench", "run"]
    if opts["seed_node"] is not None:
        args += ["--seed-node", str(opts["seed_node"])]
        for a in opts["serve_arg"]:
            args += [f"--serve-arg={a}"]
    else:
        for p in chosen:
            args += [f"--{p}", opts[p]]
    args += ["--protocol", ",".join(chosen), "--mode", opts["mode"]]
    if opts["mode"] == RATE:
        args += ["--rate", f"{opts['rate']:g}"]
    else:
        args += ["--concurrency", str(opts["concurrency"])]
    args += ["--processes", str(nproc), "--duration", f"{opts['duration']:g}"]
    if opts["requests"]:
        args += ["--requests", str(opts["requests"])]
    args += ["--timeout", f"{opts['timeout']:g}", "--mix", opts["mix"]]
    if opts["connections"]:
        args += ["--connections", str(opts["connections"])]
    if opts["pipeline"] > 1:  # figures taken with pipelining must say so
        args += ["--pipeline", str(opts["pipeline"])]
    if opts["warmup"]:
        args += ["--warmup", f"{opts['warmup']:g}"]
    if opts["udp_sockets"] != 4:
        args += ["--udp-sockets", str(opts["udp_sockets"])]
    if opts["typed_type"] != "URL":
        args += ["--typed-type", opts["typed_type"]]
    if opts["keys"] is not None:
        args += ["--keys", str(opts["keys"])]
    else:
        args += ["--prefix", opts["prefix"], "--count", str(opts["count"])]
    if opts["seed"] != 1:
        args += ["--seed", str(opts["seed"])]
    if opts["allow_remote"]:
        args.append("--allow-remote")
    return shlex.join(args)


@bench_app.command("prepare")
def prepare_cmd(
    directory: Annotated[Path, typer.Argument(help="node directory to create")],
    prefix: Annotated[str, typer.Option(help="prefix of the identifiers")] = DEFAULT_PREFIX,
    count: Annotated[int, typer.Option(help="identifiers PREFIX/item-0..N-1")] = DEFAULT_COUNT,
    store: Annotated[
        str | None,
        typer.Option(help="store URL for idnode init (default: SQLite in the directory)"),
    ] = None,
) -> None:
    """Seed a node directory for ``run --seed-node`` (reused while prefix, count and store
    match)."""
    if count <= 0:
        raise _usage("--count must be positive")
    try:
        fresh = prep.seed(directory, prefix, count, store=store)
    except prep.PrepareError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    state = "seeded" if fresh else "already seeded"
    console.print(f"{directory}: {state} with {count:,} identifiers {prefix}/item-N")


if __name__ == "__main__":
    bench_app()
