"""The issue's "done when", through the command line against a fresh ``idnode serve``:

an administrator (the operator key from ``idnode init``) creates a prefix admin with a secret
key; that admin creates, modifies, lists and deletes handles with ``idnode admin``; and the
same is done over TCP and UDP with a public key made by ``idnode keygen`` (RSA and DSA).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import IDNODE, start_node, stop_node


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IDNODE, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    node = start_node(tmp_path_factory.mktemp("cli-admin"), demo=False)
    yield node
    stop_node(node)


def conn(node, protocol: str, identity: str, *auth: str) -> list[str]:
    return ["--server", f"{node.host}:{node.port}", "--protocol", protocol, "--id", identity, *auth]


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def operator(node, protocol: str = "tcp") -> list[str]:
    key = str(node.directory / "admin_privkey.pem")
    return conn(node, protocol, f"0.NA/{node.prefix}".join(["300:", ""]), "--key", key)


def manage(node, protocol: str, auth: list[str], name: str) -> None:
    """create -> add-value -> modify-value -> list -> remove-value -> delete, via the CLI."""
    handle = f"{node.prefix}/{name}"
    assert (
        ok(run("admin", "create", handle, "-v", "1:URL:https://example.com/a", *auth)).strip()
        == handle
    )
    ok(run("admin", "add-value", handle, "-v", "2:DESC:first", *auth))
    ok(run("admin", "modify-value", handle, "-v", "2:DESC:second", *auth))
    got = json.loads(ok(run("get", handle, "--server", f"{node.host}:{node.port}", "--json")))
    assert {v["index"]: v["data"]["value"] for v in got["values"]}[2] == "second"
    assert handle in ok(run("admin", "list", node.prefix, *auth)).split()
    ok(run("admin", "remove-value", handle, "-i", "2", *auth))
    ok(run("admin", "delete", handle, *auth))
    assert handle not in ok(run("admin", "list", node.prefix, *auth)).split()


def test_prefix_admin_with_secret_key_manages_handles(served, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret-for-prefix-admin\n")
    admin = f"{served.prefix}/prefix-admin"
    identity = f"300:{admin}"
    ok(
        run(
            "admin",
            "create",
            admin,
            "-v",
            f"300:HS_SECKEY:@{secret}",
            "-v",
            f"100:HS_ADMIN:{identity}",
            *operator(served),
        )
    )
    ok(
        run(
            "admin",
            "add-value",
            f"0.NA/{served.prefix}",
            "-v",
            f"101:HS_ADMIN:{identity}",
            *operator(served, "udp"),
        )
    )
    for protocol in ("tcp", "udp"):
        auth = conn(served, protocol, identity, "--secret-file", str(secret))
        manage(served, protocol, auth, f"sec-{protocol}")
    # a wrong secret is one line and exit code 1
    bad = tmp_path / "bad"
    bad.write_text("nope")
    result = run(
        "admin",
        "create",
        f"{served.prefix}/x",
        "-v",
        "1:URL:u",
        *conn(served, "tcp", identity, "--secret-file", str(bad)),
    )
    assert result.returncode == 1 and "403" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("alg", ["rsa", "dsa"])
def test_public_key_admin_over_tcp_and_udp(served, tmp_path, alg):
    key = tmp_path / f"{alg}.pem"
    printed = json.loads(ok(run("keygen", str(key), "--alg", alg, "--bits", "1024")))
    assert printed["type"] == "HS_PUBKEY" and (tmp_path / f"{alg}.pem.pub").exists()
    admin = f"{served.prefix}/admin-{alg}"
    identity = f"300:{admin}"
    ok(
        run(
            "admin",
            "create",
            admin,
            "-v",
            f"300:HS_PUBKEY:@{key}.pub",
            "-v",
            f"100:HS_ADMIN:{identity}",
            *operator(served),
        )
    )
    na_index = {"rsa": 110, "dsa": 111}[alg]
    ok(
        run(
            "admin",
            "add-value",
            f"0.NA/{served.prefix}",
            "-v",
            f"{na_index}:HS_ADMIN:{identity}",
            *operator(served),
        )
    )
    for protocol in ("tcp", "udp"):
        manage(
            served,
            protocol,
            conn(served, protocol, identity, "--key", str(key)),
            f"{alg}-{protocol}",
        )


def test_remote_load_uses_one_session(served, tmp_path):
    records = tmp_path / "records.jsonl"
    records.write_text(
        "".join(
            json.dumps(
                {
                    "handle": f"{served.prefix}/load-{i}",
                    "values": [{"index": 1, "type": "URL", "data": f"https://e.com/{i}"}],
                }
            )
            + "\n"
            for i in range(5)
        )
    )
    out = ok(run("load", str(records), *operator(served, "udp")))
    assert "loaded 5" in out
    listed = ok(run("admin", "list", served.prefix, *operator(served)))
    assert all(f"{served.prefix}/load-{i}" in listed for i in range(5))
    again = run("admin", "load", str(records), *operator(served))
    assert again.returncode == 1 and "101" in again.stderr and "loaded 0 of 5" in again.stderr


def test_usage_errors_exit_2(served, tmp_path):
    base = ["admin", "create", f"{served.prefix}/u", "--server", f"{served.host}:{served.port}"]
    assert run(*base, "--id", "300:0.NA/x").returncode == 2  # no key
    assert run(*base, "--id", "bogus", "--key", "k").returncode == 2
    key = str(served.directory / "admin_privkey.pem")
    assert run(*base, "--id", "300:0.NA/x", "--key", key, "-v", "nonsense").returncode == 2
    assert run("keygen", str(tmp_path / "k.pem"), "--alg", "ec").returncode == 2
