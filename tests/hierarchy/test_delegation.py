"""Delegation and reporting on a parent node: tokens (hashed, single use, expiring),
publication of the child's prefix handle, suspension, and who may report."""

from __future__ import annotations

import pytest

from idnode.hierarchy.delegation import DelegationError, EnrolmentRefused, token_hash
from idnode.hierarchy.reporting import ReportBook, ReportRefused
from idnode.hierarchy.roles import RoleError, apply_role, parent_url, prefixes_for
from idnode.model import HS_PUBKEY, HS_SITE
from tests.hierarchy.nodes import CHILD_SITE, parent_node, request


@pytest.fixture
async def parent(tmp_path):
    async with parent_node(tmp_path) as node:
        yield node


def children(node):
    assert node.hierarchy is not None and node.hierarchy.delegations is not None
    return node.hierarchy.delegations


async def test_enrolment_publishes_the_childs_prefix_handle(parent):
    d = children(parent)
    token = (await d.allocate("88.123"))["token"]
    row = await parent.store.query_one("SELECT * FROM {s}.children")
    assert row["token_hash"] == token_hash(token) and token not in str(row)  # hashed at rest
    answer = await d.enrol(request(token))
    assert answer["prefix_handle"] == "0.NA/88.123" and answer["report_token"]
    values = {v.type: v for v in await parent.store.get_handle("0.NA/88.123")}
    assert values[HS_SITE].data == CHILD_SITE and values[HS_PUBKEY].data
    # single use
    with pytest.raises(EnrolmentRefused, match="already used|not recognised"):
        await d.enrol(request(token))


async def test_forged_expired_and_misdirected_tokens_are_refused(parent):
    d = children(parent)
    token = (await d.allocate("88.123"))["token"]
    with pytest.raises(EnrolmentRefused, match="not recognised"):
        await d.enrol(request("idnenrol_forged"))
    with pytest.raises(EnrolmentRefused, match="enrols 88.123, not '88.456'"):
        await d.enrol(request(token, prefix="88.456"))
    parent.runtime.clock.advance(601)
    with pytest.raises(EnrolmentRefused, match="expired"):
        await d.enrol(request(token))
    assert await parent.store.get_handle("0.NA/88.123") is None


async def test_a_site_pointing_at_the_parent_or_garbage_is_refused(parent):
    d = children(parent)
    token = (await d.allocate("88.123"))["token"]
    with pytest.raises(DelegationError, match="points at this node"):
        await d.enrol(request(token, site=parent.site))
    with pytest.raises(DelegationError, match="not HS_SITE data"):
        await d.enrol(request(token, site=b"\x00\x01junk"))
    bad = request(token)
    bad["public_key"] = "not a key"
    with pytest.raises(DelegationError, match="public_key"):
        await d.enrol(bad)
    await d.enrol(request(token))  # the token survived the refusals


async def test_only_prefixes_under_the_parents_own_can_be_allocated(parent):
    for bad in ("77.1", "88", "", "88/x"):
        with pytest.raises(DelegationError):
            await children(parent).allocate(bad)


async def test_allocating_again_replaces_the_token(parent):
    d = children(parent)
    first = (await d.allocate("88.123"))["token"]
    second = (await d.allocate("88.123"))["token"]
    with pytest.raises(EnrolmentRefused, match="not recognised"):
        await d.enrol(request(first))
    await d.enrol(request(second))
    with pytest.raises(DelegationError, match="already enrolled"):
        await d.allocate("88.123")


async def test_suspend_withdraws_and_resume_republishes(parent):
    d = children(parent)
    token = (await d.allocate("88.123"))["token"]
    await d.enrol(request(token))
    await d.suspend("88.123", "unpaid")
    assert await parent.store.get_handle("0.NA/88.123") is None
    assert (await d.live())["88.123"].state == "suspended"
    assert parent.hierarchy.routing.delegated("88.123/x").state == "suspended"  # at once
    with pytest.raises(DelegationError):
        await d.allocate("88.123")
    with pytest.raises(DelegationError, match="is suspended; needs enrolled"):
        await d.suspend("88.123")
    await d.resume("88.123")
    values = {v.type: v for v in await parent.store.get_handle("0.NA/88.123")}
    assert values[HS_SITE].data == CHILD_SITE
    assert parent.hierarchy.routing.delegated("88.123/x").state == "enrolled"
    history = await parent.store.query(
        "SELECT from_state, to_state, reason FROM {s}.state_changes WHERE kind = 'child'"
        " ORDER BY id"
    )
    assert [(h["from_state"], h["to_state"], h["reason"]) for h in history] == [
        (None, "allocated", ""),
        ("allocated", "enrolled", ""),
        ("enrolled", "suspended", "unpaid"),
        ("suspended", "enrolled", ""),
    ]


async def test_reports_need_an_enrolled_childs_token_and_feed_health(parent):
    d = children(parent)
    token = (await d.allocate("88.123"))["token"]
    report_token = (await d.enrol(request(token)))["report_token"]
    checks: dict[str, str | None] = {"result": None}

    async def check(site: bytes) -> str | None:
        return checks["result"]

    clock = parent.runtime.clock
    book = ReportBook(parent.store, clock=clock, health_timeout=10, check=check)
    with pytest.raises(ReportRefused, match="not an enrolled child"):
        await book.accept("idnreport_stranger", {"prefix": "88.123"})
    with pytest.raises(ReportRefused, match="needs the child's report token"):
        await book.accept(None, {"prefix": "88.123"})
    with pytest.raises(ReportRefused, match="reports for 88.123"):
        await book.accept(report_token, {"prefix": "88.456"})
    sub = [{"prefix": "88.123.4567", "healthy": True, "subtree": []}]
    report = {"prefix": "88.123", "health": {"status": "ok"}, "subtree": sub}
    await book.accept(report_token, report)
    await book.check_all()
    (child,) = await book.status()
    assert child["healthy"] and child["subtree"][0]["prefix"] == "88.123.4567"
    clock.advance(11)  # reports stopped
    (child,) = await book.status()
    assert not child["healthy"] and "no report for 11s" in child["reasons"][0]
    await book.accept(report_token, {"prefix": "88.123", "health": {"status": "ok"}})
    checks["result"] = "127.0.0.2:2641: connection refused"
    await book.check_all()
    (child,) = await book.status()
    assert not child["healthy"] and "health check failed" in child["reasons"][0]
    assert len(await book.history("88.123")) == 2


async def test_only_the_last_reports_are_kept(parent, monkeypatch):
    import idnode.hierarchy.reporting as reporting

    monkeypatch.setattr(reporting, "REPORTS_KEPT", 3)
    d = children(parent)
    token = (await d.allocate("88.123"))["token"]
    report_token = (await d.enrol(request(token)))["report_token"]
    book = parent.hierarchy.book
    for n in range(5):
        await book.accept(report_token, {"prefix": "88.123", "n": n})
    assert [h["report"]["n"] for h in await book.history("88.123")] == [4, 3, 2]


def test_roles_defaults_and_parent_endpoints(tmp_path):
    from idnode.config import Config
    from idnode.wire.site import SiteInfo, encode_site

    assert prefixes_for("root", []) == ["0.NA"]
    assert prefixes_for("recursive", []) == []
    with pytest.raises(RoleError):
        prefixes_for("recursive", ["88"])
    with pytest.raises(RoleError):
        prefixes_for("secondary", [])
    with pytest.raises(RoleError):
        prefixes_for("mayor", ["88"])
    cfg = apply_role(Config(directory=tmp_path), "recursive", root_info="root_info")
    assert cfg.hierarchy.recursion == 1 and cfg.server.cache_entries == 0
    assert parent_url("10.1.2.3:8000") == "http://10.1.2.3:8000"
    assert parent_url("https://top.example/") == "https://top.example"
    site = encode_site(SiteInfo.for_single_server("127.0.0.1", 2641, 2641, 8000))
    (tmp_path / "site.bin").write_bytes(site)
    assert parent_url("site.bin", tmp_path) == "http://127.0.0.1:8000"
    with pytest.raises(RoleError):
        parent_url("")


async def test_a_parent_that_reports_to_nobody_judges_children_by_their_interval(parent):
    """Issue 20: the root reports to nobody (report_interval 0, as ``parent`` is set up);
    its health limit fell to 3 s and every child stayed unhealthy between reports."""
    assert parent.config.hierarchy.report_interval == 0
    d = children(parent)
    token = (await d.allocate("88.123"))["token"]
    report_token = (await d.enrol(request(token)))["report_token"]
    book = parent.hierarchy.book
    report = {"prefix": "88.123", "health": {"status": "ok"}, "report_interval": 300}
    await book.accept(report_token, report)
    parent.runtime.clock.advance(60)  # well inside the child's 300 s schedule
    (child,) = await book.status()
    assert child["healthy"], child["reasons"]
    parent.runtime.clock.advance(900)  # three intervals missed
    (child,) = await book.status()
    assert not child["healthy"] and "limit 900s" in child["reasons"][0]
