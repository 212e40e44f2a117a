"""Issue 20: an auditor verifies a copy of the audit log with public material only.

A copied node directory without its key files verifies (the chain is read from the store
alone), and an ``idnode audit export`` archive verifies with the server's public key; an
edited entry or a foreign key is named, in one line each, never with a traceback."""

from __future__ import annotations

import shutil
import subprocess

from idnode.crypto.keys import generate_key, public_key_to_pem
from tests.conftest import IDNODE


def audit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IDNODE, "audit", *args], capture_output=True, text=True, timeout=120)


async def test_a_copy_without_keys_and_an_export_verify_with_public_material(env):
    await env.allocated("88.123.4567")  # organisation, review, prefix: audited actions
    entries = await env.audit_count()
    await env.node.close()
    node = env.tmp / "node"

    copy = env.tmp / "auditor"  # the store and the configuration, no key file at all
    copy.mkdir()
    for name in ("idnode.toml", "node.db"):
        shutil.copy(node / name, copy / name)
    assert not list(copy.glob("*.pem")) and not list(copy.glob("*key*"))
    result = audit("verify", str(copy))
    assert result.returncode == 0, result.stderr
    assert f"audit log intact: {entries} entries" in result.stdout

    archive = env.tmp / "audit.jsonl"
    exported = audit("export", str(node), "--out", str(archive))
    assert exported.returncode == 0, exported.stderr
    pub = env.tmp / "audit.jsonl.pub"
    result = audit("verify", "--log", str(archive), "--public-key", str(pub))
    assert result.returncode == 0, result.stderr
    assert f"audit log intact: {entries} entries" in result.stdout

    stranger = env.tmp / "stranger.pub"
    stranger.write_bytes(public_key_to_pem(generate_key("ed25519")))
    result = audit("verify", "--log", str(archive), "--public-key", str(stranger))
    assert result.returncode == 1 and "signature does not verify" in result.stderr

    lines = archive.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"actor":"', b'"actor":"x', 1)  # an edited entry
    archive.write_bytes(b"".join(lines))
    result = audit("verify", "--log", str(archive), "--public-key", str(pub))
    assert result.returncode == 1 and "entry 2: contents were edited" in result.stderr
    assert "Traceback" not in result.stderr

    archive.write_bytes(b"not an archive\n")
    result = audit("verify", "--log", str(archive), "--public-key", str(pub))
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
