"""Issue 6 "done when", against a real ``idnode serve``: an enterprise applies, is approved,
receives a prefix, imports 100,000 auto-parts identifiers from CSV (rejected rows reported),
one is revoked and resolves to its tombstone over UDP and HTTP, ``idnode audit verify`` passes
and then fails after a row of the audit table is edited by hand.
"""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
import subprocess
import time

import httpx
import pytest

from idnode import client
from idnode.client.admin import AdminClient
from idnode.codes import ResponseCode
from idnode.errors import IdnodeError
from idnode.model import HandleValue
from tests.conftest import IDNODE, eventually, start_node, stop_node

NODE_PREFIX = "88.123"
ENTERPRISE = "88.123.4567"
CREDIT_CODE = "91350100M000100Y43"  # the GB 32100-2015 example code
ROWS = 100_000
STATE: dict[str, str] = {}  # tokens the first test hands to the next


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IDNODE, *args], capture_output=True, text=True, timeout=300)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = start_node(tmp_path_factory.mktemp("governance"), prefix=NODE_PREFIX, demo=False)
    yield n
    stop_node(n)


def write_csv(path, rows: int) -> list[int]:
    """``rows`` valid auto-parts rows plus five broken ones; returns the broken rows' lines."""
    bad_lines = []
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["suffix", "PART_NUMBER", "PART_NAME", "MODEL", "BATCH", "SERIAL",
                    "PRODUCTION_DATE", "MANUFACTURER"])  # fmt: skip
        line = 1
        for i in range(rows):
            w.writerow([f"BP{i:07d}", f"BP-{i % 977:04d}", "Brake pad", "BP-X1",
                        f"B2026{i // 5000:03d}", f"S{i:09d}", "2026-11-02",
                        "Fujian Auto Parts"])  # fmt: skip
            line += 1
            if i in (10, 20_000, 50_000, 70_000, 99_998):
                kind = len(bad_lines)
                bad = [f"BAD{kind}", "BP-1", "Brake pad", "BP-X1", "B1", "S1", "2026-11-02",
                       "Fujian Auto Parts"]  # fmt: skip
                if kind == 0:
                    bad[6] = "2026-13-45"  # not a date
                elif kind == 1:
                    bad[4] = ""  # required BATCH missing
                elif kind == 2:
                    bad = bad[:4]  # broken row: too few cells
                elif kind == 3:
                    bad[0] = "BP0000001"  # repeats an earlier suffix
                else:
                    bad[1] = "bp 1"  # PART_NUMBER breaks its pattern
                w.writerow(bad)
                line += 1
                bad_lines.append(line)
    return bad_lines


def udp(node, handle: str):
    return asyncio.run(client.request_udp(node.host, node.port, client.resolution_request(handle)))


def test_done_when(node, tmp_path):
    api = ["--api", node.http_url]
    mgmt = node.http_url + "/api/mgmt"
    op = json.loads(ok(run("account", "create-operator", str(node.directory))))["token"]

    # an enterprise applies and is approved; approval hands out its admin's token
    org = json.loads(ok(run(
        "org", "apply", "--name", "Fujian Auto Parts Co., Ltd.", "--code", CREDIT_CODE,
        "--contact-name", "Lin Wei", "--contact-phone", "+86 591 8888 0000",
        "--contact-email", "lin.wei@example.cn", "--document", f"licence.pdf:{'ab' * 32}", *api,
    )))  # fmt: skip
    assert org["state"] == "pending"
    approved = json.loads(ok(run("org", "approve", str(org["id"]), *api, "--token", op)))
    assert approved["state"] == "approved"
    admin_token = approved["admin"]["token"]
    STATE["admin_token"] = admin_token

    # it applies for a prefix, which the operator approves and allocates
    ok(run("prefix", "apply", ENTERPRISE, "--template", "auto-parts", *api, "--token",
           admin_token))  # fmt: skip
    ok(run("prefix", "approve", ENTERPRISE, *api, "--token", op))
    allocated = json.loads(ok(run("prefix", "allocate", ENTERPRISE, *api, "--token", op)))
    assert allocated["state"] == "allocated"

    # 100,000 identifiers from CSV; the five broken rows are rejected and reported
    source = tmp_path / "parts.csv"
    bad_lines = write_csv(source, ROWS)
    report = tmp_path / "rejects.csv"
    started = time.perf_counter()
    job = json.loads(ok(run(
        "import", str(source), "--template", "auto-parts", "--prefix", ENTERPRISE,
        "--dir", str(node.directory), "--report", str(report),
    )))  # fmt: skip
    elapsed = time.perf_counter() - started
    assert (job["state"], job["imported"], job["rejected"]) == ("done", ROWS, 5), job
    rejected = list(csv.DictReader(report.open()))
    assert [int(r["row"]) for r in rejected] == bad_lines
    assert [r["field"] for r in rejected] == [
        "PRODUCTION_DATE",
        "BATCH",
        "row",
        "suffix",
        "PART_NUMBER",
    ]
    print(f"imported {ROWS} identifiers in {elapsed:.1f} s (CLI process included)")

    handle = f"{ENTERPRISE}/BP0000042"
    reply = udp(node, handle)
    assert reply.header.response_code == ResponseCode.SUCCESS
    assert {v.type: v.data for v in reply.body.values}["PART_NUMBER"] == b"BP-0042"

    # the organisation admin revokes one identifier: a tombstone over UDP and HTTP
    r = httpx.post(f"{mgmt}/identifiers/{handle}/state/revoked",
                   json={"reason": "recalled: batch B2026000"},
                   headers={"authorization": f"Bearer {admin_token}"})  # fmt: skip
    assert r.status_code == 200, r.text
    reply = udp(node, handle)
    assert reply.header.response_code == ResponseCode.HANDLE_NOT_FOUND
    assert reply.body.message.startswith(f"revoked: {handle} was revoked on ")
    r = httpx.get(f"{node.http_url}/api/handles/{handle}")
    assert r.status_code == 404
    assert r.json()["responseCode"] == 100 and r.json()["message"].startswith("revoked:")
    hist = httpx.get(f"{node.http_url}/api/mgmt/history/{handle}").json()
    assert hist["state"] == "revoked"
    assert [v["action"] for v in hist["versions"]] == ["original", "lifecycle.revoked"]
    assert udp(node, f"{ENTERPRISE}/BP0000043").header.response_code == ResponseCode.SUCCESS

    # statistics and the documented API
    metrics = httpx.get(f"{node.http_url}/metrics").text
    assert 'idnode_resolutions_total{prefix="88.123.4567"}' in metrics
    assert httpx.get(f"{node.http_url}/api/openapi.json").json()["paths"]["/api/mgmt/imports"]

    # the audit chain holds, then an edited row is found and named
    assert "intact" in ok(run("audit", "verify", str(node.directory)))
    db = sqlite3.connect(node.directory / "node.db")  # the audit lives in the store
    with db:
        db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 3")
    db.close()
    broken = run("audit", "verify", str(node.directory))
    assert broken.returncode == 1
    assert "entry 3: contents were edited" in broken.stderr


def test_registrar_writes_are_the_same_on_rest_and_wire(node):
    """A registrar's token is its Handle secret: REST (Basic) and the binary protocol write
    with the organisation's rights, under the template, like the management API."""
    if "admin_token" not in STATE:
        pytest.skip("needs the allocated prefix of test_done_when")
    mgmt = node.http_url + "/api/mgmt"
    r = httpx.post(f"{mgmt}/accounts", json={"name": "line-7", "role": "registrar", "org_id": 1},
                   headers={"authorization": f"Bearer {STATE['admin_token']}"})  # fmt: skip
    assert r.status_code == 201, r.text
    acct = r.json()
    token, ident = acct["token"], acct["identity"]
    fields = {"PART_NUMBER": "BP-9", "PART_NAME": "Brake disc", "MODEL": "D1", "BATCH": "B9",
              "PRODUCTION_DATE": "2026-11-03", "MANUFACTURER": "Fujian Auto Parts"}  # fmt: skip
    r = httpx.put(f"{mgmt}/identifiers/{ENTERPRISE}/API-1", json={"fields": fields},
                  headers={"authorization": f"Bearer {token}"})  # fmt: skip
    assert r.status_code == 201, r.text

    # REST with HTTP Basic: the template is enforced and names the field
    handle = f"{ENTERPRISE}/REST-1"
    values = [{"index": i, "type": k, "data": {"format": "string", "value": v}}
              for i, (k, v) in enumerate(fields.items(), 1) if k != "BATCH"]  # fmt: skip
    r = httpx.put(f"{node.http_url}/api/handles/{handle}", json={"values": values},
                  auth=(ident.replace(":", "%3A", 1), token))  # fmt: skip
    assert r.status_code == 400, r.text
    assert "field BATCH: required field is missing" in r.json()["message"]

    # the binary protocol, secret-key answer over the stored PBKDF2 parameters
    p = acct["pbkdf2"]
    good = [HandleValue(i, k, v.encode()) for i, (k, v) in enumerate(fields.items(), 1)]

    async def wire() -> None:
        async with AdminClient(
            node.host, node.port, "tcp", ident, secret=token, secret_alg="PBKDF2-HMAC-SHA1",
            pbkdf2=(bytes.fromhex(p["salt"]), p["iterations"], p["bits"]),
        ) as c:  # fmt: skip
            await c.create_handle(f"{ENTERPRISE}/WIRE-1", good)
            with pytest.raises(IdnodeError, match="field PRODUCTION_DATE"):
                await c.create_handle(
                    f"{ENTERPRISE}/WIRE-2",
                    [*good[:4], HandleValue(5, "PRODUCTION_DATE", b"2026-13-01"), *good[5:]],
                )
            with pytest.raises(IdnodeError):  # another organisation's space: no rights
                await c.create_handle(f"{NODE_PREFIX}/not-mine", good)

    asyncio.run(wire())
    assert udp(node, f"{ENTERPRISE}/WIRE-1").header.response_code == ResponseCode.SUCCESS

    # the API import: a background job with progress and a downloadable report
    body = (
        "suffix,PART_NUMBER,PART_NAME,MODEL,BATCH,PRODUCTION_DATE,MANUFACTURER\n"
        "JOB-1,BP-1,Pad,X,B1,2026-11-02,ACME\n"
        "JOB-2,BP-1,Pad,X,B1,2026-11-31,ACME\n"
        "JOB-3,BP-1,Pad,X,B1,2026-11-02,ACME\n"
    )
    bearer = {"authorization": f"Bearer {token}"}
    r = httpx.post(f"{mgmt}/imports", params={"prefix": ENTERPRISE}, content=body.encode(),
                   headers=bearer)  # fmt: skip
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]

    def finished() -> dict | None:
        job = httpx.get(f"{mgmt}/imports/{job_id}", headers=bearer).json()
        return job if job["state"] in ("done", "failed") else None

    job = eventually(finished, f"import job {job_id} to finish")
    assert (job["state"], job["imported"], job["rejected"]) == ("done", 2, 1), job
    report = httpx.get(f"{mgmt}/imports/{job_id}/rejects", headers=bearer).text
    assert report.splitlines()[1] == "3,PRODUCTION_DATE,is not a valid date"
    assert udp(node, f"{ENTERPRISE}/JOB-3").header.response_code == ResponseCode.SUCCESS
    assert udp(node, f"{ENTERPRISE}/WIRE-2").header.response_code == ResponseCode.HANDLE_NOT_FOUND
