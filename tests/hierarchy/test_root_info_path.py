"""Issue 20: ``idnode init --role recursive --root-info PATH`` run from one directory and
``idnode serve`` run from another must agree on the file; a missing file is a one-line
error from ``serve``, not workers restarting forever. Real ``idnode`` processes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from idnode.config import load_config
from idnode.hierarchy.service import load_configured_root_info
from idnode.wire.site import SiteInfo, encode_site
from tests.conftest import IDNODE, free_port

BOUND = 120  # seconds: a bound on a hung process, not a measurement


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*IDNODE, *args], cwd=cwd, capture_output=True, text=True, timeout=BOUND)


def test_root_info_is_stored_absolute_and_serve_fails_in_one_line_without_it(tmp_path):
    operator = tmp_path / "operator"  # where the operator runs init, holding root.bin
    operator.mkdir()
    (operator / "root.bin").write_bytes(
        encode_site(SiteInfo.for_single_server("127.0.0.1", 2641, 2641, 8000))
    )
    node = tmp_path / "nodes" / "rec"
    port = str(free_port())
    init = run(
        "init", str(node), "--role", "recursive", "--root-info", "root.bin",
        "--udp-port", port, "--tcp-port", port, "--http-port", str(free_port()),
        cwd=operator,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    stored = Path(load_config(node).hierarchy.root_info)
    assert stored.is_absolute() and stored == (operator / "root.bin").resolve()

    (operator / "root.bin").unlink()  # serve from elsewhere, the file gone: one line, exit
    served = run("serve", str(node), "--workers", "2", cwd=tmp_path)
    assert served.returncode != 0
    message = served.stderr.strip()
    assert "root_info" in message and "No such file" in message
    assert len(message.splitlines()) == 1 and "Traceback" not in message


def test_a_root_info_not_found_at_init_is_read_in_the_node_directory(tmp_path):
    node = tmp_path / "rec"
    port = str(free_port())
    result = run(
        "init", str(node), "--role", "recursive", "--root-info", "root_info",
        "--udp-port", port, "--tcp-port", port, "--http-port", str(free_port()),
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0 and "serve` reads it in" in result.stderr
    cfg = load_config(node)
    assert cfg.hierarchy.root_info == "root_info"  # fetched into the node directory later
    served = run("serve", str(node), "--workers", "2", cwd=tmp_path)
    assert served.returncode == 2 and str(node / "root_info") in served.stderr
    (node / "root_info").write_bytes(
        encode_site(SiteInfo.for_single_server("127.0.0.1", 2641, 2641, 8000))
    )
    assert load_configured_root_info(cfg) is not None  # what serve checks, now found
