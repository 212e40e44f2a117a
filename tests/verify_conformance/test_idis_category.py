"""The ``idis`` category: selected with ``--only idis``, run only with ``--idis``, and failing a
real node that does not speak the SDK's dialect (``[protocol] profile = "handle"``)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from idnode.verify.conformance.catalogue import all_checks
from idnode.verify.conformance.cli import verify_app
from tests.conftest import start_node, stop_node

IDIS_IDS = {c.id for c in all_checks() if c.category == "idis"}
# what the handle profile refuses: the client-chosen session id and the 2001 login
LOGIN_IDS = {"IDIS-010", "IDIS-011", "IDIS-012", "IDIS-013", "IDIS-014"}


def _run(node, key_path, out, *extra: str):
    return CliRunner().invoke(
        verify_app,
        [
            "--udp",
            f"{node.host}:{node.port}",
            "--tcp",
            f"{node.host}:{node.port}",
            "--admin",
            "300:0.NA/20.500.123",
            "--private-key",
            str(key_path),
            "--only",
            "idis",
            "--no-sample",
            "--json",
            str(out),
            *extra,
        ],
    )


def test_the_category_is_in_the_catalogue():
    assert LOGIN_IDS | {"IDIS-001", "IDIS-002", "IDIS-003", "IDIS-004"} <= IDIS_IDS


def test_without_the_flag_the_idis_checks_are_skipped(env, tmp_path):
    out = tmp_path / "r.json"
    result = _run(env.node, env.key_path, out)
    doc = json.loads(out.read_text())
    assert {r["id"] for r in doc["results"]} == IDIS_IDS, result.output
    assert all(r["status"] == "skipped" and "--idis" in r["message"] for r in doc["results"])


def test_the_auto_profile_passes_them(env, tmp_path):
    out = tmp_path / "r.json"
    result = _run(env.node, env.key_path, out, "--idis")
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert {r["id"]: r["status"] for r in doc["results"]} == {i: "passed" for i in IDIS_IDS}


def test_a_handle_net_only_node_fails_the_login_checks(tmp_path):
    """The same idnode with ``profile = "handle"``: resolutions with the SDK's trailing auth
    field still pass (accepting it conflicts with no client), everything the SDK needs of a
    session of its own fails."""
    node = start_node(tmp_path / "node", env={"IDNODE_PROTOCOL_PROFILE": "handle"})
    try:
        out = tmp_path / "r.json"
        result = _run(node, node.directory / "admin_privkey.pem", out, "--idis")
    finally:
        stop_node(node)
    assert result.exit_code == 1, result.output
    statuses = {r["id"]: r["status"] for r in json.loads(out.read_text())["results"]}
    assert {i for i, s in statuses.items() if s == "failed"} == LOGIN_IDS, statuses
    assert {i for i, s in statuses.items() if s == "passed"} == IDIS_IDS - LOGIN_IDS
