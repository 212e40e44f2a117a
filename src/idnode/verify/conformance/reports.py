"""The four reports of a run: Rich terminal summary, JUnit XML, JSON and one HTML page.

The HTML page is self-contained (inline CSS and SVG, no scripts) so it can be mailed or
attached to a CI run. Its performance section shows an ``idnode bench`` report when one is
given (``--load-report``), else the small timing sample the runner took.
"""

from __future__ import annotations

import html
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from idnode import __version__
from idnode.verify.conformance.catalogue import CATEGORIES, MUST
from idnode.verify.conformance.runner import ERROR, FAILED, PASSED, SKIPPED, Report

STYLE = {PASSED: "green", FAILED: "red", ERROR: "magenta", SKIPPED: "yellow"}


def summary(report: Report) -> dict[str, int]:
    out = {s: report.count(s) for s in (PASSED, FAILED, ERROR, SKIPPED)}
    out["total"] = len(report.results)
    out["must_failed"] = sum(r.blocking for r in report.results)
    return out


def to_dict(report: Report, load_report: dict | None = None) -> dict[str, Any]:
    return {
        "tool": "idnode verify",
        "version": __version__,
        "target": report.target.describe(),
        "run_id": report.run_id,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(report.started)),
        "duration_s": round(report.duration, 3),
        "passed": report.ok,
        "summary": summary(report),
        "fixture_error": report.fixture_error,
        "cleanup_left": report.cleanup_left,
        "results": [r.to_dict() for r in report.results],
        "performance": {
            "sample": report.timing.to_dict() if report.timing else None,
            "load_report": load_report,
        },
    }


def write_json(report: Report, path: Path, load_report: dict | None = None) -> None:
    path.write_text(json.dumps(to_dict(report, load_report), indent=2) + "\n", encoding="utf-8")


def write_junit(report: Report, path: Path) -> None:
    """One testsuite per category; should-failures are failures too (CI shows them), the
    exit code is what distinguishes must from should."""
    root = ET.Element("testsuites", name="idnode verify", tests=str(len(report.results)))
    for cat, label in CATEGORIES.items():
        rows = [r for r in report.results if r.spec.category == cat]
        if not rows:
            continue
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{cat}: {label}",
            tests=str(len(rows)),
            failures=str(sum(r.status == FAILED for r in rows)),
            errors=str(sum(r.status == ERROR for r in rows)),
            skipped=str(sum(r.status == SKIPPED for r in rows)),
            time=f"{sum(r.duration for r in rows):.3f}",
        )
        for r in rows:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"verify.{cat}",
                name=f"{r.spec.id} {r.spec.title}",
                time=f"{r.duration:.3f}",
            )
            if r.status in (FAILED, ERROR):
                tag = "failure" if r.status == FAILED else "error"
                el = ET.SubElement(
                    case,
                    tag,
                    message=r.message[:500],
                    type=f"{r.spec.severity} ({r.spec.reference})",
                )
                el.text = _detail(r)
            elif r.status == SKIPPED:
                ET.SubElement(case, "skipped", message=r.message)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _detail(r) -> str:
    lines = [f"expected: {r.expected}", f"got: {r.got}"]
    for e in r.exchanges:
        lines.append(f"sent ({e['channel']}): {e['sent']}")
        lines.append(f"received: {e['received']}")
    return "\n".join(lines)


def print_summary(report: Report, console: Console, verbose: bool = False) -> None:
    table = Table(title="idnode verify", show_lines=False)
    for col in ("id", "severity", "status", "title / failure"):
        table.add_column(col)
    for r in report.results:
        if r.status == PASSED and not verbose:
            continue
        text = r.spec.title if r.status == PASSED else f"{r.spec.title}\n[dim]{r.message}[/dim]"
        if r.status in (FAILED, ERROR):
            text += "".join(
                f"\n[dim]  sent {e['channel']}: {e['sent'][:140]}\n"
                f"  received: {e['received'][:140]}[/dim]"
                for e in r.exchanges[-2:]
            )
        table.add_row(r.spec.id, r.spec.severity, f"[{STYLE[r.status]}]{r.status}[/]", text)
    if table.row_count:
        console.print(table)
    s = summary(report)
    verdict = "[green]PASSED[/]" if report.ok else "[red]FAILED[/]"
    console.print(
        f"{verdict}: {s['passed']} passed, {s['failed']} failed, {s['error']} errors, "
        f"{s['skipped']} skipped of {s['total']} checks "
        f"({s['must_failed']} must-check failures) in {report.duration:.1f}s"
    )
    if report.fixture_error:
        console.print(f"[red]{report.fixture_error}[/]")
    if report.cleanup_left:
        console.print(f"[yellow]test identifiers left behind: {report.cleanup_left}[/]")


# -- HTML ---------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%;font-size:13px}
td,th{border:1px solid #ddd;padding:4px 6px;vertical-align:top;text-align:left}
th{background:#f4f4f4}.passed{color:#1a7f37}.failed{color:#cf222e;font-weight:bold}
.error{color:#8250df;font-weight:bold}.skipped{color:#9a6700}
pre{white-space:pre-wrap;margin:0;font-size:12px;color:#555}
.verdict{font-size:1.4em}.cards span{display:inline-block;margin-right:2em}
"""


def _perf_html(report: Report, load_report: dict | None) -> str:
    parts = ["<h2>Performance</h2>"]
    try:
        from idnode.verify.svg import percentile_plot
    except ImportError:  # the load generator is optional
        percentile_plot = None  # type: ignore[assignment]
    if load_report and load_report.get("runs"):
        parts.append("<p>From the load generator report (<code>idnode bench</code>).</p>")
        rows = [
            "<tr><th>run</th><th>sent</th><th>ok</th><th>errors</th><th>per s</th>"
            "<th>p50 ms</th><th>p99 ms</th></tr>"
        ]
        curves = []
        for run in load_report["runs"]:
            lat = run.get("latency_ms", {})
            label = f"{run.get('protocol')} {run.get('mode', '')}"
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(x))}</td>"
                    for x in (
                        label,
                        run.get("sent"),
                        run.get("ok"),
                        run.get("errors"),
                        run.get("throughput_per_s"),
                        lat.get("p50"),
                        lat.get("p99"),
                    )
                )
                + "</tr>"
            )
            curve = [(p, ms * 1e6) for p, ms in run.get("percentile_curve_ms", [])]
            if curve:
                curves.append((label, curve))
        parts.append("<table>" + "".join(rows) + "</table>")
        if percentile_plot and curves:
            parts.append(percentile_plot("latency by percentile", curves))
        return "\n".join(parts)
    sample = report.timing
    if sample is None or not sample.latencies:
        parts.append("<p>No timing sample was taken.</p>")
        return "\n".join(parts)
    parts.append(
        "<p>Built-in sample: sequential resolutions, one at a time "
        "(no load report was given; run <code>idnode bench</code> for throughput).</p>"
    )
    rows = [
        "<tr><th>transport</th><th>answers</th><th>no answer</th><th>p50 ms</th>"
        "<th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>"
    ]
    for t, d in sample.to_dict().items():
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{x}</td>"
                for x in (
                    t,
                    d["count"],
                    d["failures"],
                    d["p50_ms"],
                    d["p90_ms"],
                    d["p99_ms"],
                    d["max_ms"],
                )
            )
            + "</tr>"
        )
    parts.append("<table>" + "".join(rows) + "</table>")
    if percentile_plot:
        curves = []
        for t, values in sample.latencies.items():
            if values:
                ordered = sorted(values)
                pts = [(100 * (i + 1) / (len(ordered) + 1), v * 1e9) for i, v in enumerate(ordered)]
                curves.append((t, pts))
        if curves:
            parts.append(percentile_plot("latency by percentile (sample)", curves))
    return "\n".join(parts)


def html_page(report: Report, load_report: dict | None = None) -> str:
    s = summary(report)
    verdict = "PASSED" if report.ok else "FAILED"
    target = ", ".join(f"{k} {v}" for k, v in report.target.describe().items() if v)
    rows = []
    for r in report.results:
        detail = html.escape(r.message)
        if r.status in (FAILED, ERROR):
            detail += "<pre>" + html.escape(_detail(r)) + "</pre>"
        must = "<b>must</b>" if r.spec.severity == MUST else "should"
        rows.append(
            f"<tr><td>{r.spec.id}</td><td>{html.escape(r.spec.title)}</td>"
            f"<td>{html.escape(r.spec.reference)}</td><td>{must}</td>"
            f"<td class='{r.status}'>{r.status}</td><td>{detail}</td></tr>"
        )
    extra = ""
    if report.fixture_error:
        extra += f"<p class='failed'>{html.escape(report.fixture_error)}</p>"
    if report.cleanup_left:
        extra += f"<p class='skipped'>left behind: {html.escape(str(report.cleanup_left))}</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>idnode verify: {verdict}</title>
<style>{CSS}</style></head><body>
<h1>idnode verify</h1>
<p class="verdict {verdict.lower() if report.ok else "failed"}">{verdict}</p>
<p>Target: {html.escape(target)} &middot; run {report.run_id} &middot;
{time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(report.started))} &middot;
{report.duration:.1f}s &middot; idnode {__version__}</p>
<p class="cards"><span class="passed">{s["passed"]} passed</span>
<span class="failed">{s["failed"]} failed</span><span class="error">{s["error"]} errors</span>
<span class="skipped">{s["skipped"]} skipped</span><span>{s["must_failed"]} must-failures</span></p>
{extra}
<h2>Results</h2>
<table><tr><th>id</th><th>title</th><th>reference</th><th>severity</th><th>status</th>
<th>details</th></tr>
{"".join(rows)}
</table>
{_perf_html(report, load_report)}
</body></html>
"""


def write_html(report: Report, path: Path, load_report: dict | None = None) -> None:
    path.write_text(html_page(report, load_report), encoding="utf-8")
