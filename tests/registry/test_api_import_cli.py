"""Issue 20: ``idnode import --api`` streams the file to the management API (past the 16 MiB
body limit of other requests) and exits 1, in one line, when every row was rejected.

A real ``idnode serve`` on the registry's store and the CLI as a real process; the upload
is bounded in size (17 MiB, a few thousand rows) and in time (the subprocess timeout)."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import orjson

from idnode.registry.accounts import ORG_ADMIN
from tests.conftest import IDNODE, free_port, serve_node, stop_node

LIMIT = 16 * 1024 * 1024  # [limits] http_max_body, the bound of every other request
HEADER = ["suffix", "PART_NUMBER", "PART_NAME", "MODEL", "BATCH", "PRODUCTION_DATE",
          "MANUFACTURER", "VEHICLE_MODELS", "URL", "DESC"]  # fmt: skip


def write_rows(path: Path, *, past: int = 0, count: int = 0, date: str = "2026-11-02") -> int:
    """Fat auto-parts rows until the file is over ``past`` bytes (or ``count`` rows)."""
    rows = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        while (past and fh.tell() <= past) or rows < count:
            w.writerow([f"P{rows:06d}", "BP-1", "Brake pad", "X1", "B1", date, "Fujian Auto",
                        "M" * 500, "https://e.com/" + "p" * 1900, "d" * 1000])  # fmt: skip
            rows += 1
    return rows


def import_over_api(path: Path, url: str, token: str) -> subprocess.CompletedProcess:
    args = ["import", str(path), "--prefix", "88.123.4567", "--api", url, "--token", token]
    return subprocess.run([*IDNODE, *args], capture_output=True, text=True, timeout=600)


async def test_api_imports_stream_past_the_body_limit_and_all_rejected_exits_1(env):
    org = await env.allocated("88.123.4567")
    _, token, _ = await env.reg.accounts.create("t", "boss", ORG_ADMIN, org["id"])
    await env.node.close()  # the served node takes the store from here
    node = serve_node(env.tmp / "node", free_port(), free_port(), "88.123")
    try:
        big = env.tmp / "big.csv"
        rows = write_rows(big, past=LIMIT + 1024 * 1024)
        assert big.stat().st_size > LIMIT
        result = import_over_api(big, node.http_url, token)
        assert result.returncode == 0, result.stderr
        job = orjson.loads(result.stdout)
        assert job["state"] == "done" and job["imported"] == rows and job["rejected"] == 0

        bad = env.tmp / "bad.csv"
        write_rows(bad, count=3, date="2026-13-45")  # every row breaks PRODUCTION_DATE
        result = import_over_api(bad, node.http_url, token)
        assert result.returncode == 1
        message = result.stderr.strip()
        assert len(message.splitlines()) == 1 and "every row was rejected (3)" in message
    finally:
        stop_node(node)
