"""``idnode bench`` end to end: a seeded node served for the run, reports written, refusals."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from idnode.verify.bench_cli import bench_app

runner = CliRunner()


def test_seed_node_run_writes_reports(tmp_path):
    node, out_json, out_html = tmp_path / "node", tmp_path / "b.json", tmp_path / "b.html"
    args = [
        "run",
        "--seed-node",
        str(node),
        "--count",
        "50",
        "--protocol",
        "udp,http",
        "--requests",
        "200",
        "--duration",
        "2",
        "--processes",
        "1",
        "--concurrency",
        "4",
        "--json-out",
        str(out_json),
        "--html-out",
        str(out_html),
    ]
    result = runner.invoke(bench_app, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(out_json.read_text())
    assert [r["protocol"] for r in doc["runs"]] == ["udp", "http"]
    for r in doc["runs"]:
        assert r["sent"] == r["ok"] == 200 and r["errors"] == 0
        assert r["latency_ms"]["p50"] <= r["latency_ms"]["p99"] <= r["latency_ms"]["max"]
        assert sum(r["timeline_ok_per_s"]) == 200
    command = doc["command"]
    assert command.startswith("idnode bench run --seed-node") and "--count 50" in command
    html = out_html.read_text()
    assert html.count("<svg") == 3  # percentiles, and throughput per run
    command_html = re.search(r"<pre id='command'>(.*?)</pre>", html).group(1)
    assert command_html == command.replace("'", "&#x27;")
    assert "reproduce: idnode bench run" in result.output

    again = runner.invoke(bench_app, [*args[:6], "udp", *args[7:]])  # reuses the seeded store
    assert again.exit_code == 0 and "seeded" not in again.output


def test_remote_target_refused():
    result = runner.invoke(bench_app, ["run", "--udp", "192.0.2.1:2641", "--duration", "1"])
    assert result.exit_code == 2
    assert "--allow-remote" in result.output


def test_usage_errors():
    for args in (
        ["run"],
        ["run", "--udp", "127.0.0.1:1", "--mode", "rate"],
        ["run", "--udp", "127.0.0.1:1", "--mix", "hot=1"],
    ):
        assert runner.invoke(bench_app, args).exit_code == 2, args


def test_prepare_refuses_a_foreign_directory(tmp_path):
    (tmp_path / "idnode.toml").write_text("# someone's node\n")
    result = runner.invoke(bench_app, ["prepare", str(tmp_path), "--count", "5"])
    assert result.exit_code == 1 and "refusing" in result.output
