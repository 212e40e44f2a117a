"""The command line as an operator uses it."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tests.conftest import IDNODE, start_node, stop_node


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IDNODE, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("protocol", ["udp", "tcp", "http"])
def test_get_prints_json(running_node, protocol):
    result = run(
        "get",
        f"{running_node.prefix}/demo-1",
        "--protocol",
        protocol,
        "--server",
        f"127.0.0.1:{running_node.port}",
        "--http",
        running_node.http_url,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["values"][0]["data"]["value"] == "https://example.com/products/pump-7"


def test_get_table_and_not_found(running_node):
    result = run(
        "get", f"{running_node.prefix}/demo-1", "--server", f"127.0.0.1:{running_node.port}"
    )
    assert result.returncode == 0 and "pump-7" in result.stdout
    result = run(
        "get", f"{running_node.prefix}/missing", "--server", f"127.0.0.1:{running_node.port}"
    )
    assert result.returncode == 1
    assert "100" in result.stderr and "Traceback" not in result.stderr


def test_get_unreachable_server_is_one_line_error():
    result = run(
        "get", "20.500.123/x", "--server", "127.0.0.1:9", "--protocol", "tcp", "--timeout", "1"
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stderr.strip()


def test_usage_errors(tmp_path):
    result = run("serve", str(tmp_path / "nothing-here"))
    assert result.returncode == 2 and "idnode init" in result.stderr
    result = run("get", "20.500.123/x", "--protocol", "carrier-pigeon")
    assert result.returncode == 2
    result = run("init", str(tmp_path / "n"), "--prefix", "bad/prefix")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_init_refuses_existing_node(tmp_path):
    assert run("init", str(tmp_path), "--prefix", "20.500.9").returncode == 0
    again = run("init", str(tmp_path), "--prefix", "20.500.9")
    assert again.returncode == 2 and "already" in again.stderr


def test_load_rejects_bad_file_and_writes_nothing(running_node, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"handle": "20.500.123/ok-1", "values": [{"index": 1, "type": "URL", "data": "x"}]}\n'
        '{"handle": "20.500.123/ok-2", "values": [{"index": "one", "type": "URL"}]}\n'
    )
    result = run("load", str(running_node.directory), str(bad))
    assert result.returncode == 1 and "bad.jsonl:2" in result.stderr
    result = run("get", "20.500.123/ok-1", "--server", f"127.0.0.1:{running_node.port}")
    assert result.returncode == 1  # nothing half-written
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text('{"handle": "99.9/x", "values": []}\n')
    result = run("load", str(running_node.directory), str(foreign))
    assert result.returncode == 1 and "not responsible for 99.9/x" in result.stderr


def test_sigterm_shuts_down_gracefully(tmp_path):
    node = start_node(tmp_path / "n", demo=False)
    node.process.send_signal(signal.SIGTERM)
    out = stop_node(node)
    assert node.process.returncode == 0
    assert '"stopped"' in out
