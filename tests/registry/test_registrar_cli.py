"""Issue 20: a registrar writes over the binary protocol from the command line.

The node keeps a registrar's token only as PBKDF2(token, salt, iterations), so a challenge
answer verifies only with those parameters: ``idnode admin ... --pbkdf2 SALT:ITER:BITS``
passes them. A real ``idnode serve`` on the registry's store, the CLI as a real process."""

from __future__ import annotations

import subprocess

from idnode.registry.accounts import REGISTRAR
from tests.conftest import IDNODE, free_port, serve_node, stop_node

FIELDS = {"PART_NUMBER": "BP-9", "PART_NAME": "Brake disc", "MODEL": "D1", "BATCH": "B9",
          "PRODUCTION_DATE": "2026-11-02", "MANUFACTURER": "Fujian Auto Parts"}  # fmt: skip


def admin(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IDNODE, "admin", *args], capture_output=True, text=True, timeout=120)


async def test_a_registrar_token_creates_over_the_wire_with_its_pbkdf2_parameters(env):
    org = await env.allocated("88.123.4567")
    _, token, extra = await env.reg.accounts.create("t", "line-7", REGISTRAR, org["id"])
    await env.node.close()  # the served node takes the store from here
    secret = env.tmp / "token"
    secret.write_text(token + "\n")
    p = extra["pbkdf2"]
    port = free_port()
    node = serve_node(env.tmp / "node", port, free_port(), "88.123")
    try:
        values = [f"{i}:{k}:{v}" for i, (k, v) in enumerate(FIELDS.items(), 1)]
        common = ["--server", f"127.0.0.1:{port}", "--id", extra["identity"],
                  "--secret-file", str(secret)]  # fmt: skip
        opts = [x for v in values for x in ("-v", v)]
        refused = admin("create", "88.123.4567/CLI-0", *opts, *common)
        assert refused.returncode == 1  # a plain HMAC answer cannot match a derived key
        made = admin("create", "88.123.4567/CLI-1", *opts, *common,
                     "--pbkdf2", f"{p['salt']}:{p['iterations']}:{p['bits']}")  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert "88.123.4567/CLI-1" in made.stdout
        bad = admin("create", "88.123.4567/CLI-2", *opts, *common, "--pbkdf2", "zz:1")
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    finally:
        stop_node(node)
