"""(c) Exit codes and what an unreachable, garbage-answering or refusing target looks like."""

from __future__ import annotations

import asyncio
import json
import socket
import threading

import pytest
from typer.testing import CliRunner

from idnode.verify.conformance.catalogue import all_checks
from idnode.verify.conformance.cli import verify_app


def invoke(*args: str):
    return CliRunner().invoke(verify_app, list(args))


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "args,needle",
    [
        ((), "at least one of --udp"),
        (("--udp", "nonsense"), "host:port"),
        (("--udp", "127.0.0.1:99999"), "host:port"),
        (("--http", "ftp://x"), "http://"),
        (("--udp", "127.0.0.1:1", "--admin", "300:0.NA/1"), "exactly one of"),
        (("--udp", "127.0.0.1:1", "--admin", "nonsense", "--secret-key-file", "/x"), "--admin"),
        (("--udp", "127.0.0.1:1", "--private-key", "/nonexistent"), "need --admin"),
        (
            ("--udp", "127.0.0.1:1", "--admin", "300:0.NA/1", "--private-key", "/nonexistent"),
            "cannot read",
        ),
        (("--udp", "127.0.0.1:1", "--only", "NOPE-999"), "matches no check"),
    ],
)
def test_usage_errors_exit_2(args, needle):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert needle in result.output


def test_list_prints_the_catalogue():
    result = invoke("--list")
    assert result.exit_code == 0
    for c in all_checks():
        assert f"| {c.id} |" in result.output


def test_unreachable_target_fails_each_check_with_a_message(tmp_path):
    port = dead_port()
    out = tmp_path / "r.json"
    result = invoke(
        "--udp",
        f"127.0.0.1:{port}",
        "--tcp",
        f"127.0.0.1:{port}",
        "--http",
        f"http://127.0.0.1:{port}",
        "--prefix",
        "20.500.9",
        "--json",
        str(out),
        "--timeout",
        "0.5",
    )
    assert result.exit_code == 1, result.output
    doc = json.loads(out.read_text())
    failed = [r for r in doc["results"] if r["status"] == "failed"]
    assert failed and all(r["status"] in ("failed", "skipped") for r in doc["results"])
    for r in failed:
        assert any(w in r["message"] for w in ("refused", "cannot connect", "no answer")), r


def test_wrong_credential_is_reported_per_check(env, tmp_path):
    node = env.node
    secret = tmp_path / "secret"
    secret.write_text("not-the-secret\n")
    out = tmp_path / "r.json"
    result = invoke(
        "--udp",
        f"{node.host}:{node.port}",
        "--tcp",
        f"{node.host}:{node.port}",
        "--admin",
        "300:0.NA/20.500.123",
        "--secret-key-file",
        str(secret),
        "--only",
        "AUTH",
        "--only",
        "RES-003",
        "--only",
        "ADM-001",
        "--only",
        "ADM-010",
        "--json",
        str(out),
        "--no-sample",
    )
    assert result.exit_code == 1, result.output
    doc = json.loads(out.read_text())
    assert "could not write test identifiers" in doc["fixture_error"]
    for r in doc["results"]:
        assert r["status"] == "failed", r
        assert r["message"], r


class _Garbage:
    """UDP, TCP and HTTP on loopback answering every request with junk."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)

    async def _start(self) -> None:
        junk = b"\x02\x0b\x00\x00" + b"\xff" * 40

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, t):
                self.t = t

            def datagram_received(self, data, addr):
                self.t.sendto(junk, addr)

        async def tcp(reader, writer):
            await reader.read(100)
            writer.write(junk)
            await writer.drain()
            writer.close()

        async def http(reader, writer):
            await reader.read(1000)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n<html")
            await writer.drain()
            writer.close()

        self.tcp = await asyncio.start_server(tcp, "127.0.0.1", 0)
        self.port = self.tcp.sockets[0].getsockname()[1]
        self.udp, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            Udp, local_addr=("127.0.0.1", self.port)
        )
        self.http = await asyncio.start_server(http, "127.0.0.1", 0)
        self.http_port = self.http.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def close():
            self.tcp.close()
            self.http.close()
            self.udp.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)


def test_garbage_answering_target(tmp_path):
    g = _Garbage()
    try:
        out = tmp_path / "r.json"
        result = invoke(
            "--udp",
            f"127.0.0.1:{g.port}",
            "--tcp",
            f"127.0.0.1:{g.port}",
            "--http",
            f"http://127.0.0.1:{g.http_port}",
            "--prefix",
            "20.500.9",
            "--json",
            str(out),
            "--timeout",
            "0.5",
            "--no-sample",
        )
    finally:
        g.stop()
    assert result.exit_code == 1, result.output
    doc = json.loads(out.read_text())
    ran = [r for r in doc["results"] if r["status"] != "skipped"]
    assert ran and all(r["status"] == "failed" for r in ran), [
        (r["id"], r["status"], r["message"]) for r in ran if r["status"] != "failed"
    ]
    assert any("does not decode" in r["message"] or "does not frame" in r["message"] for r in ran)
    assert any("JSON" in r["message"] for r in ran)
