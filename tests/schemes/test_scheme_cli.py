"""``idnode scheme``: a name's Handle identifier and back, as an operator runs it."""

from __future__ import annotations

import subprocess

import orjson

from tests.conftest import IDNODE


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IDNODE, "scheme", *args], capture_output=True, text=True, timeout=60)


def test_maps_a_gs1_element_string_and_an_oid():
    done = run("gs1:(01)09506000134352(10)ABC", "--prefix", "20.500.123")
    assert done.returncode == 0, done.stderr
    body = orjson.loads(done.stdout)
    assert body["handle"] == "20.500.123/01/09506000134352/10/ABC"
    assert body["forms"] == {"gs1": "gs1:01/09506000134352/10/ABC"}
    back = orjson.loads(run("20.500.123/oid/1.2.156", "--prefix", "20.500.123").stdout)
    assert back["forms"] == {"oid": "urn:oid:1.2.156"}


def test_errors_are_one_line_with_an_exit_code():
    done = run("urn:oid:1.02", "--prefix", "20.500.123")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: urn:oid:1.02: OID '1.02': arc '02' is not a decimal number without leading zeros"
    ]
    assert run("urn:oid:1.2").returncode == 2  # neither --node nor --prefix
