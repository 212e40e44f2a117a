"""Delegation and reporting on a parent's files: tokens (hashed, single use, expiring),
publication of the child's prefix handle, suspension, and who may report."""

from __future__ import annotations

import base64

import pytest

from idnode.crypto.keys import generate_key, public_key_to_pem
from idnode.hierarchy.db import HierarchyDB
from idnode.hierarchy.delegation import (
    DelegationError,
    Delegations,
    EnrolmentRefused,
    token_hash,
)
from idnode.hierarchy.reporting import ReportBook, ReportRefused
from idnode.hierarchy.roles import RoleError, apply_role, parent_url, prefixes_for
from idnode.model import HS_PUBKEY, HS_SITE
from idnode.runtime import ManualClock, SeededRandom
from idnode.service.names import PrefixSet
from idnode.store.sqlite import SQLiteStore
from idnode.wire.site import SiteInfo, encode_site

PARENT_SITE = encode_site(SiteInfo.for_single_server("127.0.0.1", 2641, 2641, 8000))
CHILD_SITE = encode_site(SiteInfo.for_single_server("127.0.0.2", 2641, 2641, 8000))
KEY_PEM = public_key_to_pem(generate_key("ed25519")).decode()


@pytest.fixture
async def parent(tmp_path):
    now = [1_700_000_000.0]
    store = SQLiteStore(str(tmp_path / "n.db"), clock=ManualClock())
    await store.open()
    await store.home_prefix("88")
    db = HierarchyDB(tmp_path / "hierarchy.db")
    d = Delegations(
        db, store, own_site=PARENT_SITE, homed=PrefixSet(["88"]), operator_prefix="88",
        clock=lambda: now[0], token_ttl=600, random=SeededRandom(0),
    )  # fmt: skip
    d.now = now  # type: ignore[attr-defined]
    yield d
    db.close()
    await store.close()


def request(token: str, prefix: str = "88.123", site: bytes = CHILD_SITE) -> dict:
    return {
        "token": token,
        "prefix": prefix,
        "site": base64.b64encode(site).decode(),
        "public_key": KEY_PEM,
        "name": "sec",
        "role": "secondary",
    }


async def test_enrolment_publishes_the_childs_prefix_handle(parent):
    token = parent.allocate("88.123")["token"]
    row = parent.db.one("SELECT * FROM children")
    assert row["token_hash"] == token_hash(token) and token not in str(row)  # hashed at rest
    answer = await parent.enrol(request(token))
    assert answer["prefix_handle"] == "0.NA/88.123" and answer["report_token"]
    values = {v.type: v for v in await parent.store.get_handle("0.NA/88.123")}
    assert values[HS_SITE].data == CHILD_SITE and values[HS_PUBKEY].data
    # single use
    with pytest.raises(EnrolmentRefused, match="already used|not recognised"):
        await parent.enrol(request(token))


async def test_forged_expired_and_misdirected_tokens_are_refused(parent):
    token = parent.allocate("88.123")["token"]
    with pytest.raises(EnrolmentRefused, match="not recognised"):
        await parent.enrol(request("idnenrol_forged"))
    with pytest.raises(EnrolmentRefused, match="enrols 88.123, not '88.456'"):
        await parent.enrol(request(token, prefix="88.456"))
    parent.now[0] += 601
    with pytest.raises(EnrolmentRefused, match="expired"):
        await parent.enrol(request(token))
    assert await parent.store.get_handle("0.NA/88.123") is None


async def test_a_site_pointing_at_the_parent_or_garbage_is_refused(parent):
    token = parent.allocate("88.123")["token"]
    with pytest.raises(DelegationError, match="points at this node"):
        await parent.enrol(request(token, site=PARENT_SITE))
    with pytest.raises(DelegationError, match="not HS_SITE data"):
        await parent.enrol(request(token, site=b"\x00\x01junk"))
    bad = request(token)
    bad["public_key"] = "not a key"
    with pytest.raises(DelegationError, match="public_key"):
        await parent.enrol(bad)
    await parent.enrol(request(token))  # the token survived the refusals


async def test_only_prefixes_under_the_parents_own_can_be_allocated(parent):
    for bad in ("77.1", "88", "", "88/x"):
        with pytest.raises(DelegationError):
            parent.allocate(bad)


async def test_suspend_withdraws_and_resume_republishes(parent):
    token = parent.allocate("88.123")["token"]
    await parent.enrol(request(token))
    await parent.suspend("88.123", "unpaid")
    assert await parent.store.get_handle("0.NA/88.123") is None
    assert parent.live()["88.123"].state == "suspended"
    with pytest.raises(DelegationError):
        parent.allocate("88.123")
    await parent.resume("88.123")
    assert await parent.store.get_handle("0.NA/88.123") is not None


async def test_reports_need_an_enrolled_childs_token_and_feed_health(parent):
    token = parent.allocate("88.123")["token"]
    report_token = (await parent.enrol(request(token)))["report_token"]
    checks: dict[str, str | None] = {"result": None}

    async def check(site: bytes) -> str | None:
        return checks["result"]

    book = ReportBook(parent.db, clock=lambda: parent.now[0], health_timeout=10, check=check)
    with pytest.raises(ReportRefused, match="not an enrolled child"):
        book.accept("idnreport_stranger", {"prefix": "88.123"})
    with pytest.raises(ReportRefused, match="needs the child's report token"):
        book.accept(None, {"prefix": "88.123"})
    with pytest.raises(ReportRefused, match="reports for 88.123"):
        book.accept(report_token, {"prefix": "88.456"})
    sub = [{"prefix": "88.123.4567", "healthy": True, "subtree": []}]
    book.accept(report_token, {"prefix": "88.123", "health": {"status": "ok"}, "subtree": sub})
    await book.check_all()
    (child,) = book.status()
    assert child["healthy"] and child["subtree"][0]["prefix"] == "88.123.4567"
    parent.now[0] += 11  # reports stopped
    (child,) = book.status()
    assert not child["healthy"] and "no report for 11s" in child["reasons"][0]
    book.accept(report_token, {"prefix": "88.123", "health": {"status": "ok"}})
    checks["result"] = "127.0.0.2:2641: connection refused"
    await book.check_all()
    (child,) = book.status()
    assert not child["healthy"] and "health check failed" in child["reasons"][0]
    assert len(book.history("88.123")) == 2


def test_roles_defaults_and_parent_endpoints(tmp_path):
    from idnode.config import Config

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
    (tmp_path / "site.bin").write_bytes(PARENT_SITE)
    assert parent_url("site.bin", tmp_path) == "http://127.0.0.1:8000"
    with pytest.raises(RoleError):
        parent_url("")
