"""The replication commands' refusals: one line and a non-zero exit, nothing written."""

from __future__ import annotations

from typer.testing import CliRunner

from idnode.cli import app

runner = CliRunner()


def test_a_mirror_needs_its_primary_and_identity(tmp_path):
    got = runner.invoke(app, ["init", str(tmp_path / "m"), "--role", "mirror"])
    assert got.exit_code == 2 and "a mirror needs --primary HOST:PORT" in got.output
    assert not (tmp_path / "m").exists()  # refused before anything is written
    got = runner.invoke(
        app, ["init", str(tmp_path / "m2"), "--role", "mirror", "--prefix", "20.500.1"]
    )
    assert got.exit_code == 2 and "give no --prefix" in got.output
    assert not (tmp_path / "m2").exists()
    bad = ["--primary", "nowhere", "--identity", "300:0.NA/x", "--key", "k.pem"]
    got = runner.invoke(app, ["init", str(tmp_path / "m3"), "--role", "mirror", *bad])
    assert got.exit_code == 2 and "expected HOST:PORT" in got.output
    assert not (tmp_path / "m3").exists()


def test_restore_refuses_an_altered_backup(tmp_path):
    assert runner.invoke(app, ["init", str(tmp_path / "p"), "--prefix", "20.500.2"]).exit_code == 0
    got = runner.invoke(app, ["backup", str(tmp_path / "p"), str(tmp_path / "bk")])
    assert got.exit_code == 0 and "SM3" in got.output
    (tmp_path / "bk" / "node" / "node.db").write_bytes(b"not the snapshot")
    got = runner.invoke(app, ["restore", str(tmp_path / "bk"), str(tmp_path / "r")])
    assert got.exit_code == 1 and "node/node.db is missing or altered" in got.output
    assert not (tmp_path / "r").exists()
