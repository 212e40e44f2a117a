"""The README's two commands, run the way a new user runs them.

``make test`` is what CI runs, so it is exercised by this very run; here ``make serve`` runs in
a pristine copy of the repository (the files git tracks), reusing this run's virtualenv so
the test does not download the world again, with ports moved off the defaults by the
``IDNODE_SERVER_*`` overrides the README documents.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, wait_http

VENV = Path(sys.prefix)


def tracked_copy(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / name.decode()
        if src.is_file():
            (dest / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name.decode())
    return dest


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.skipif(not (VENV / ".installed").exists(), reason="not running from make's venv")
def test_make_serve_then_get(tmp_path):
    repo = tracked_copy(tmp_path / "repo")
    port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "IDNODE_SERVER_UDP_PORT": str(port),
        "IDNODE_SERVER_TCP_PORT": str(port),
        "IDNODE_SERVER_HTTP_PORT": str(http_port),
    }
    stamp = VENV / ".installed"
    proc = subprocess.Popen(
        ["make", "-o", str(stamp), "serve", f"VENV={VENV}"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{http_port}", proc, timeout=60)
        assert (repo / "var" / "idnode.toml").exists()
        for protocol in ("udp", "tcp"):
            result = subprocess.run(
                [
                    str(VENV / "bin" / "idnode"),
                    "get",
                    "20.500.123/demo-1",
                    "--protocol",
                    protocol,
                    "--server",
                    f"127.0.0.1:{port}",
                    "--json",
                ],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert result.returncode == 0, result.stderr
            assert "pump-7" in result.stdout
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=20)
