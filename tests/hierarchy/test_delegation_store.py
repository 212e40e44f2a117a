"""Issue 13 ("one node, one truth") for the hierarchy: its state lives in the store and its
writes go through the write service.

* a child's prefix handle is written and withdrawn through ``node.admin`` as the node
  operator (history and audit like any write), with the child's state change in the same
  transaction: a crash before COMMIT leaves neither;
* children and reports are tables of the store; there is no ``hierarchy.db``;
* another process's ``idnode child suspend`` reaches the serving process through the store's
  write announcements, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import pytest

import idnode.store.sqlite as sqlite_engine
from idnode.model import HS_SITE
from idnode.runtime import ManualClock, Runtime, SeededRandom
from tests.hierarchy.nodes import (
    CHILD_SITE,
    START,
    eventually,
    make_parent,
    opened,
    parent_node,
    pg_schema_name,
    request,
)
from tests.store.conftest import PG_DSN, pg_connect

OPERATOR = "300:0.NA/88"
CHILD_HANDLE = "0.NA/88.123"


@pytest.fixture
async def parent(tmp_path):
    async with parent_node(tmp_path) as node:
        yield node


async def enrolled(node) -> str:
    """Allocate and enrol 88.123; its report token."""
    d = node.hierarchy.delegations
    token = (await d.allocate("88.123"))["token"]
    return (await d.enrol(request(token)))["report_token"]


async def child_state(node) -> str:
    return await node.store.query_value("SELECT state FROM {s}.children WHERE key = ?", "88.123")


async def test_the_childs_prefix_handle_is_written_through_the_write_service(parent):
    d = parent.hierarchy.delegations
    await enrolled(parent)
    await d.suspend("88.123", "unpaid")
    await d.resume("88.123")
    kept = await parent.store.history(CHILD_HANDLE)
    assert [(k.action, k.actor) for k in kept] == [
        ("create", OPERATOR),
        ("delete", OPERATOR),
        ("create", OPERATOR),
    ]
    audit = await parent.store.query(
        "SELECT actor, action FROM {s}.audit WHERE target = ? ORDER BY seq", CHILD_HANDLE
    )
    assert [(a["actor"], a["action"]) for a in audit] == [
        (OPERATOR, "handle.create"),
        (OPERATOR, "handle.delete"),
        (OPERATOR, "handle.create"),
    ]


@pytest.fixture
def crash_before_commit(monkeypatch):
    """Every transaction that changes the children table fails after all its statements
    ran, before COMMIT -- a power cut at the worst moment."""
    real = sqlite_engine.apply_effects

    def crashing(effects, **kw):
        yield from real(effects, **kw)
        if any("children" in st.sql for st in effects.statements):
            raise RuntimeError("power cut before COMMIT")

    armed = {"on": False}

    def apply_effects(effects, **kw):
        return crashing(effects, **kw) if armed["on"] else real(effects, **kw)

    monkeypatch.setattr(sqlite_engine, "apply_effects", apply_effects)
    return armed


async def test_a_crash_leaves_the_record_and_the_childs_state_agreeing(parent, crash_before_commit):
    d = parent.hierarchy.delegations
    token = (await d.allocate("88.123"))["token"]

    crash_before_commit["on"] = True
    with pytest.raises(RuntimeError, match="power cut"):
        await d.enrol(request(token))
    assert await parent.store.get_handle(CHILD_HANDLE) is None
    assert await child_state(parent) == "allocated"
    crash_before_commit["on"] = False
    await d.enrol(request(token))  # the token was not spent by the failed enrolment
    assert await child_state(parent) == "enrolled"

    crash_before_commit["on"] = True
    with pytest.raises(RuntimeError, match="power cut"):
        await d.suspend("88.123", "unpaid")
    assert await parent.store.get_handle(CHILD_HANDLE) is not None
    assert await child_state(parent) == "enrolled"
    assert parent.hierarchy.routing.delegated("88.123/x").state == "enrolled"

    crash_before_commit["on"] = False
    await d.suspend("88.123", "unpaid")
    crash_before_commit["on"] = True
    with pytest.raises(RuntimeError, match="power cut"):
        await d.resume("88.123")
    assert await parent.store.get_handle(CHILD_HANDLE) is None
    assert await child_state(parent) == "suspended"


async def test_a_suspension_whose_record_is_already_gone_still_applies(parent):
    d = parent.hierarchy.delegations
    await enrolled(parent)
    await parent.store.delete_handle(CHILD_HANDLE)  # e.g. removed by hand
    await d.suspend("88.123", "gone")
    assert await child_state(parent) == "suspended"


async def test_children_and_reports_live_in_the_store(parent):
    report_token = await enrolled(parent)
    await parent.hierarchy.book.accept(report_token, {"prefix": "88.123", "n": 1})
    directory = parent.config.directory
    assert not (directory / "hierarchy.db").exists()
    assert sorted(p.name for p in directory.iterdir() if p.suffix == ".db") == ["node.db"]
    assert await parent.store.query_value("SELECT count(*) FROM {s}.children") == 1
    assert await parent.store.query_value("SELECT count(*) FROM {s}.reports") == 1
    with pytest.raises(ImportError):
        import idnode.hierarchy.db  # noqa: F401


@pytest.fixture(params=["sqlite", "postgres"])
async def shared_store(request, tmp_path):
    """A parent's configuration on one store, and the runtime both its processes use."""
    runtime = Runtime(ManualClock(START), SeededRandom(0))
    if request.param == "sqlite":
        yield await make_parent(tmp_path / "p", prefix="88", role="top-level", runtime=runtime)
        return
    schema = pg_schema_name()
    url = f"{PG_DSN}?schema={schema}"
    try:
        yield await make_parent(
            tmp_path / "p", prefix="88", role="top-level", runtime=runtime, store_url=url
        )
    finally:
        conn = await pg_connect()
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()


async def test_another_processs_suspension_reaches_the_serving_node(shared_store):
    cfg = shared_store
    runtime = Runtime(ManualClock(START), SeededRandom(1))
    async with opened(cfg, runtime) as serving, opened(cfg, runtime) as command:
        await serving.start()
        report_token = await enrolled(serving)  # enrolment is served over HTTP
        routing = serving.hierarchy.routing
        assert routing.delegated("88.123/x").state == "enrolled"

        # `idnode child suspend` in another process
        await command.hierarchy.delegations.suspend("88.123", "unpaid")

        async def suspended():
            child = routing.delegated("88.123/x")
            return child is not None and child.state == "suspended"

        await eventually(suspended, "the suspension to reach the serving process")
        assert await serving.store.get_handle(CHILD_HANDLE) is None

        await command.hierarchy.delegations.resume("88.123")

        async def resumed():
            return routing.delegated("88.123/x").state == "enrolled"

        await eventually(resumed, "the resumption to reach the serving process")
        values = await serving.store.get_handle(CHILD_HANDLE)
        assert {v.type: v.data for v in values}[HS_SITE] == CHILD_SITE

        # a report taken by another worker shows in this one's /metrics
        await command.hierarchy.book.accept(report_token, {"prefix": "88.123"})

        async def reported():
            scraped = (await serving.registry.stats.render()).decode()
            return "idnode_hierarchy_child_report_age_seconds{" in scraped

        await eventually(reported, "the report to reach the serving process")
        assert (
            await serving.store.query_value(
                "SELECT count(*) FROM {s}.reports WHERE key = ?", "88.123"
            )
            == 1
        )
