"""Reports of a bench: a Rich table, a JSON document, a self-contained HTML page.

All three are built from the same ``summary`` of each run, so they cannot disagree. The
JSON keeps the raw histogram counts too, so runs can be merged or re-plotted later; the
HTML page starts with the exact command that reproduces it.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape as rich_escape
from rich.table import Table

from idnode.runtime import Clock, utc
from idnode.verify.engine import RATE, LoadSpec
from idnode.verify.results import ERROR_KINDS, Results
from idnode.verify.svg import percentile_plot, timeline_plot

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass
class Run:
    """One protocol's run: what was asked (spec, processes, target) and what came back."""

    spec: LoadSpec
    processes: int
    results: Results

    @property
    def label(self) -> str:
        return f"{self.spec.protocol} {self.spec.mode}"


def _ms(ns: int | float) -> float:
    return round(ns / 1e6, 4)


def summary(run: Run) -> dict[str, Any]:
    r, spec = run.results, run.spec
    lat = r.latency
    out: dict[str, Any] = {
        "protocol": spec.protocol,
        "target": f"{spec.host}:{spec.port}",
        "mode": spec.mode,
        "processes": run.processes,
        "concurrency_per_process": spec.concurrency if spec.mode != RATE else None,
        "target_rate": spec.rate if spec.mode == RATE else None,
        "keys": spec.keys.describe(),
        "mix": spec.mix,
        "typed_type": spec.typed_type,
        "timeout_s": spec.timeout,
        "pipeline": spec.pipeline if spec.protocol == "http" else 1,
        "warmup_s": spec.warmup,
        "sent": r.total_sent,
        "ok": r.total_ok,
        "errors": r.total_errors,
        "sent_by_kind": r.sent,
        "ok_by_kind": r.ok,
        "errors_by_kind": r.errors,
        "elapsed_s": round(r.elapsed_ns / 1e9, 4),
        "throughput_per_s": round(r.throughput, 1),
        "latency_ms": {
            **{f"p{p:g}": _ms(lat.percentile(p)) for p in PERCENTILES},
            "max": _ms(lat.max),
            "min": _ms(lat.min),
            "mean": _ms(lat.mean),
        },
        "timeline_ok_per_s": r.timeline_ok,
        "timeline_errors_per_s": r.timeline_errors,
        "error_samples": r.samples,
        "percentile_curve_ms": [[round(p, 5), _ms(v)] for p, v in lat.percentile_curve()],
        "histogram_ns": lat.to_dict(),
    }
    if spec.mode == RATE:
        svc = r.service
        out["service_ms"] = {
            **{f"p{p:g}": _ms(svc.percentile(p)) for p in PERCENTILES},
            "max": _ms(svc.max),
        }
    return out


def environment(uvloop: bool, clock: Clock) -> dict[str, Any]:
    """Where and when (on ``clock``) the figures were taken."""
    return {
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "uvloop": uvloop,
        "when": utc(clock).isoformat(timespec="seconds"),
    }


def document(command: str, runs: list[Run], env: dict[str, Any]) -> dict[str, Any]:
    return {"command": command, "environment": env, "runs": [summary(r) for r in runs]}


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")


def _errors_text(errors: dict[str, int]) -> str:
    text = ", ".join(f"{k} {v}" for k in ERROR_KINDS if (v := errors.get(k)))
    return text or "none"


def print_table(console: Console, doc: dict[str, Any]) -> None:
    table = Table(title="idnode bench", title_justify="left")
    for col in ("run", "sent", "ok", "answers/s", "p50", "p90", "p99", "p99.9", "max", "errors"):
        table.add_column(col, justify="left" if col in ("run", "errors") else "right")
    for s in doc["runs"]:
        lat = s["latency_ms"]
        rate = (
            f" @{s['target_rate']:,.0f}/s"
            if s["target_rate"]
            else (f" x{s['concurrency_per_process']}")
        )
        table.add_row(
            f"{s['protocol']} {s['mode']}{rate} ({s['processes']}p)",
            f"{s['sent']:,}",
            f"{s['ok']:,}",
            f"{s['throughput_per_s']:,.0f}",
            *(f"{lat[k]:.3f}" for k in ("p50", "p90", "p99", "p99.9", "max")),
            _errors_text(s["errors_by_kind"]),
        )
    console.print(table)
    console.print(
        "latencies in ms, of answers as expected; "
        + (
            "fixed-rate latencies from the intended send time"
            if any(s["mode"] == RATE for s in doc["runs"])
            else "closed loop"
        )
    )
    for s in doc["runs"]:
        for note in s["error_samples"]:
            console.print(f"[yellow]{s['protocol']}[/]: {rich_escape(note)}")


_CSS = """body{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#222}
code,pre{background:#f4f4f4;padding:.2rem .4rem}pre{padding:.6rem;overflow-x:auto}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem;
text-align:right}th:first-child,td:first-child{text-align:left}"""


def html_page(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    rows = []
    for s in doc["runs"]:
        lat = s["latency_ms"]
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{escape(str(c))}</td>"
                for c in (
                    f"{s['protocol']} {s['mode']}",
                    s["sent"],
                    s["ok"],
                    f"{s['throughput_per_s']:,.0f}",
                    lat["p50"],
                    lat["p90"],
                    lat["p99"],
                    lat["p99.9"],
                    lat["max"],
                    _errors_text(s["errors_by_kind"]),
                )
            )
            + "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "run",
            "sent",
            "ok",
            "answers/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "errors",
        )
    )
    curves = [
        (f"{s['protocol']} {s['mode']}", [(p, v * 1e6) for p, v in s["percentile_curve_ms"]])
        for s in doc["runs"]
    ]
    sections = [percentile_plot("Latency by percentile", curves)]
    for s in doc["runs"]:
        sections.append(
            f"<h2>{escape(s['protocol'])} ({escape(s['mode'])}, {escape(s['target'])})</h2>"
        )
        sections.append(
            timeline_plot(
                f"{s['protocol']}: answers per second",
                [("ok", s["timeline_ok_per_s"]), ("errors", s["timeline_errors_per_s"])],
            )
        )
        details = {
            k: s[k]
            for k in (
                "mix",
                "keys",
                "processes",
                "concurrency_per_process",
                "target_rate",
                "sent_by_kind",
                "ok_by_kind",
                "errors_by_kind",
                "elapsed_s",
                "latency_ms",
            )
        }
        if "service_ms" in s:
            details["service_ms (from actual send)"] = s["service_ms"]
        sections.append(
            "<pre>" + escape(orjson.dumps(details, option=orjson.OPT_INDENT_2).decode()) + "</pre>"
        )
        if s["error_samples"]:
            sections.append(
                "<p>Error samples:</p><ul>"
                + "".join(f"<li>{escape(n)}</li>" for n in s["error_samples"])
                + "</ul>"
            )
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>idnode bench</title>"
        f"<style>{_CSS}</style></head><body>\n<h1>idnode bench</h1>\n"
        f"<p>Reproduce with:</p><pre id='command'>{escape(doc['command'])}</pre>\n"
        f"<p>{escape(str(env['cores']))} cores {escape(env['machine'])}, Python "
        f"{escape(env['python'])}, uvloop {'yes' if env['uvloop'] else 'no'}, "
        f"{escape(env['when'])}. Latency of answers as expected; errors counted beside.</p>\n"
        f"<table><tr>{head}</tr>{''.join(rows)}</table>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )


def write_html(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page(doc), encoding="utf-8")


__all__ = [
    "Run",
    "document",
    "environment",
    "html_page",
    "print_table",
    "summary",
    "write_html",
    "write_json",
]
