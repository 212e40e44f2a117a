"""Issue 20, supervision data upward: a child's signed report carries its monthly report and
its audit head with the links since the head the parent holds; the parent keeps every head,
shows what each child reported and when (API, CLI), and detects a rewritten chain even when
the rewrite is internally consistent. Real nodes on SQLite and PostgreSQL, real signatures."""

from __future__ import annotations

import subprocess

import httpx
import pytest

from idnode.app import open_node
from idnode.bootstrap import ADMIN_KEY_NAME, init_node
from idnode.config import CONFIG_NAME, render_config
from idnode.crypto.keys import load_private_key_pem, public_key_to_pem
from idnode.hierarchy import supervision
from idnode.hierarchy.delegation import DelegationError
from idnode.hierarchy.reporting import Reporter, ReportRefused
from idnode.hierarchy.supervision import CONTRADICTS, EXTENDS, UNPROVEN, judge
from idnode.registry.creditcode import check_character
from idnode.runtime import ManualClock, Runtime, SeededRandom
from idnode.store.audit_chain import GENESIS, entry_digest, verify_chain
from idnode.store.effects import Effects, Statement
from tests.conftest import IDNODE
from tests.hierarchy.nodes import CONTACT, START, pg_schema_name
from tests.hierarchy.nodes import request as enrol_request
from tests.store.conftest import PG_DSN, pg_connect


@pytest.fixture(params=["sqlite", "postgres"], name="pair")
async def pair_fixture(request, tmp_path):
    """A top-level parent (88) and an enrolled secondary child (88.123) with a registry."""
    runtime = Runtime(ManualClock(START), SeededRandom(0))
    url, schema = "", ""
    if request.param == "postgres":
        schema = pg_schema_name()
        url = f"{PG_DSN}?schema={schema}"
    pcfg = await init_node(tmp_path / "parent", name="p", prefixes=["88"], runtime=runtime,
                           store_url=url)  # fmt: skip
    pcfg.hierarchy.role, pcfg.hierarchy.report_interval = "top-level", 0
    (tmp_path / "parent" / CONFIG_NAME).write_text(render_config(pcfg), encoding="utf-8")
    ccfg = await init_node(tmp_path / "child", name="c", prefixes=["88.123"], runtime=runtime)
    ccfg.hierarchy.role, ccfg.hierarchy.report_interval = "secondary", 0
    parent = await open_node(pcfg, runtime=runtime)
    child = await open_node(ccfg, runtime=runtime)
    try:
        d = parent.hierarchy.delegations
        token = (await d.allocate("88.123"))["token"]
        key = load_private_key_pem((tmp_path / "child" / ADMIN_KEY_NAME).read_bytes())
        enrol = {**enrol_request(token), "public_key": public_key_to_pem(key).decode()}
        report_token = (await d.enrol(enrol))["report_token"]
        child.hierarchy.reporter = Reporter("http://unused", report_token,
                                            child.hierarchy.signed_report, 60)  # fmt: skip
        yield parent, child, report_token, request.param
    finally:
        await child.close()
        await parent.close()
        if schema:
            conn = await pg_connect()
            try:
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            finally:
                await conn.close()


async def send(parent, child, token: str, report: dict | None = None) -> dict:
    """What ``Reporter.report_once`` does, without the network: build, sign, accept."""
    report = report if report is not None else await child.hierarchy.signed_report()
    answer = await parent.hierarchy.book.accept(token, report)
    child.hierarchy.reporter.held_seq = answer["audit"]["held_seq"]
    return answer


async def audited_work(child, n: int) -> None:
    reg = child.registry
    done = await reg.store.query_value("SELECT count(*) FROM {s}.organisations")
    for i in range(int(done), int(done) + n):
        base = f"91350100M0001{i:04d}"
        org = await reg.organisations.apply("t", f"Org {i}", base + check_character(base),
                                            CONTACT)  # fmt: skip
        await reg.organisations.approve("t", org["id"])


async def rewrite_chain(child, seq: int) -> None:
    """Edit entry ``seq`` and re-chain everything after it: the child's own check passes."""
    store = child.store
    rows = await store.query("SELECT * FROM {s}.audit ORDER BY seq")
    prev, updates = GENESIS, []
    for r in rows:
        actor = "someone else" if r["seq"] == seq else r["actor"]
        digest = entry_digest(prev, r["seq"], r["time"], actor, r["action"], r["target"],
                              r["before_digest"], r["after_digest"])  # fmt: skip
        updates.append(Statement("UPDATE {s}.audit SET actor = ?, prev_digest = ?, digest = ?"
                                 " WHERE seq = ?", (actor, prev, digest, r["seq"])))  # fmt: skip
        prev = digest
    updates.append(Statement("UPDATE {s}.meta SET value = ? WHERE key = 'audit_head'",
                             (f"{rows[-1]['seq']}:{prev}",)))  # fmt: skip
    await store.apply(Effects(statements=tuple(updates), target="tamper"), logged=False)
    rows = await store.query("SELECT * FROM {s}.audit ORDER BY seq")
    assert verify_chain(rows)[1] == []  # locally undetectable


async def test_heads_are_proven_by_links_and_a_rewrite_is_detected(pair):
    parent, child, token, _ = pair
    await audited_work(child, 2)
    first = await send(parent, child, token)
    assert first["audit"]["verdict"] == "first"
    held = first["audit"]["held_seq"]
    assert held == await child.store.query_value("SELECT max(seq) FROM {s}.audit") and held > 0
    report = await child.hierarchy.signed_report()
    assert report["monthly"]["month"] == "2026-11" and report["signature"]["value"]
    assert report["audit"]["since"] == held and report["audit"]["links"] == []

    await audited_work(child, 1)
    second = await send(parent, child, token)
    assert second["audit"]["verdict"] == EXTENDS, second
    assert second["audit"]["held_seq"] > held

    # a signature that does not match the child's enrolled key refuses the report
    forged = await child.hierarchy.signed_report()
    forged["monthly"] = {**forged["monthly"], "month": "2026-10"}
    with pytest.raises(ReportRefused, match="signature"):
        await parent.hierarchy.book.accept(token, forged)

    # links missing (the child restarted): unproven, and the next report proves it
    child.hierarchy.reporter.held_seq = None
    await audited_work(child, 1)
    assert (await send(parent, child, token))["audit"]["verdict"] == UNPROVEN
    assert (await send(parent, child, token))["audit"]["verdict"] == EXTENDS

    # the history already reported is rewritten consistently: the parent sees it
    await rewrite_chain(child, 2)
    await audited_work(child, 1)
    bad = await send(parent, child, token)
    assert bad["audit"]["verdict"] == CONTRADICTS and "rewritten" in bad["audit"]["detail"]
    again = await send(parent, child, token)  # the baseline stays the last proven head
    assert again["audit"]["verdict"] == CONTRADICTS

    shown = await parent_view(parent)
    assert shown["contradictions"] == 2 and shown["monthly"]["month"] == "2026-11"
    verdicts = [h["verdict"] for h in shown["audit_heads"]]
    assert verdicts == [CONTRADICTS, CONTRADICTS, EXTENDS, UNPROVEN, EXTENDS, "first"]
    with pytest.raises(DelegationError, match="audit"):
        await parent.hierarchy.book.accept(token, {"prefix": "88.123", "audit": {"seq": "x"}})


async def parent_view(parent) -> dict:
    """``GET /api/hierarchy/children/88.123/supervision`` with an operator's token."""
    from idnode.transport.http import build_app

    _, op, _ = await parent.registry.accounts.create("t", "op1", "operator")
    app = build_app(parent, extra_routes=parent.routes)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.5", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as c:
        url = "/api/hierarchy/children/{}/supervision"
        assert (await c.get(url.format("88.123"))).status_code in (401, 403)
        missing = await c.get(url.format("88.999"), headers={"authorization": f"Bearer {op}"})
        assert missing.status_code == 404
        r = await c.get(url.format("88.123"), headers={"authorization": f"Bearer {op}"})
        assert r.status_code == 200, r.text
        return r.json()


async def test_a_long_gap_is_proven_over_several_reports(pair, monkeypatch):
    parent, child, token, _ = pair
    await audited_work(child, 1)
    await send(parent, child, token)
    monkeypatch.setattr(supervision, "MAX_LINKS", 2)
    await audited_work(child, 3)  # two entries each: six links to prove
    head = await child.store.query_value("SELECT max(seq) FROM {s}.audit")
    held = child.hierarchy.reporter.held_seq
    steps = 0
    while held < head:  # each report proves two more entries, never more
        answer = (await send(parent, child, token))["audit"]
        assert answer["verdict"] == EXTENDS and answer["held_seq"] == min(held + 2, head)
        held, steps = answer["held_seq"], steps + 1
    assert steps >= 3
    assert "proven up to" in (await parent_view(parent))["audit_heads"][1]["detail"]


def test_judge_refuses_gaps_truncation_and_links_that_do_not_hash():
    d1 = entry_digest(GENESIS, 1, 10, "a", "x", "t", "", "")
    d2 = entry_digest(d1, 2, 11, "a", "x", "t", "", "")
    link2 = [2, 11, "a", "x", "t", "", "", d2]
    assert judge((1, d1), {"seq": 2, "digest": d2, "since": 1, "links": [link2]})[0] == EXTENDS
    assert judge((2, d2), {"seq": 1, "digest": d1})[0] == CONTRADICTS  # truncated
    assert judge((1, d1), {"seq": 1, "digest": d2})[0] == CONTRADICTS  # same seq, other digest
    edited = [2, 11, "b", "x", "t", "", "", d2]
    assert judge((1, d1), {"seq": 2, "digest": d2, "since": 1, "links": [edited]})[0] \
        == CONTRADICTS  # fmt: skip
    # links stopping short of the head prove part of the way: the baseline advances there
    short = judge((1, d1), {"seq": 3, "digest": "ff", "since": 1, "links": [link2]})
    assert short[0] == EXTENDS and short[2] == (2, d2)
    wrong_end = judge((1, d1), {"seq": 2, "digest": "ff", "since": 1, "links": [link2]})
    assert wrong_end[0] == CONTRADICTS
    gap = [3, 11, "a", "x", "t", "", "", d2]
    assert judge((1, d1), {"seq": 3, "digest": d2, "since": 1, "links": [gap]})[0] == CONTRADICTS
    assert judge((1, d1), {"seq": 2, "digest": d2})[0] == UNPROVEN
    with pytest.raises(ValueError):
        judge(None, {"seq": True, "digest": d1})


async def test_the_cli_shows_a_childs_reports_and_fails_on_a_contradiction(pair, tmp_path):
    parent, child, token, engine = pair
    if engine != "sqlite":
        pytest.skip("the CLI reads the parent's directory; one engine is enough")
    await audited_work(child, 1)
    await send(parent, child, token)
    run = [*IDNODE, "child", "reports", "88.123", "--dir", str(tmp_path / "parent")]
    ok = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    await rewrite_chain(child, 1)
    await audited_work(child, 1)
    await send(parent, child, token)
    bad = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and '"contradicts"' in bad.stdout
    missing = subprocess.run([*run[:-3], "88.999", *run[-2:]], capture_output=True, text=True,
                             timeout=120)  # fmt: skip
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1
