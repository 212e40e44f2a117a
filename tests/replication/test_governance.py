"""Governance replication (idnode's extension, OC_RETRIEVE_GOVERNANCE): a mirror holds the
primary's organisations, prefixes, accounts, audit chain and statistics, and once promoted
runs the same registry (the audit chain verifies, the old primary's operator token works)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from typer.testing import CliRunner

from idnode.app import NodeApp, open_node
from idnode.cli import app
from idnode.config import CONFIG_NAME, load_config, render_config
from idnode.replication.promotion import promote_store
from idnode.runtime import ManualClock, Runtime, SystemRandom
from idnode.service.replication import GOVERNANCE_KEY, read_meta
from idnode.store import capture
from idnode.wire import replication as rw
from tests.registry.conftest import CONTACT, OTHER_CODE, VALID_CODE
from tests.replication.test_mirror import Pair, mirror_template, open_mirror  # noqa: F401
from tests.transport.conftest import PREFIX, WireNode, node_template, wire_node  # noqa: F401

CHILD = f"{PREFIX}.4567"
GOVERNED = ("organisations", "accounts", "prefixes", "audit", "state_changes", "stats_daily")


async def rows(node: NodeApp, table: str) -> list[dict[str, Any]]:
    order = ", ".join(capture.TABLES[table])
    return await node.store.query(f"SELECT * FROM {{s}}.{table} ORDER BY {order}")


async def govern(node: NodeApp) -> tuple[int, str]:
    """An approved organisation with an allocated prefix and an operator account: its id and
    the account's token."""
    reg = node.registry
    assert reg is not None
    org = await reg.organisations.apply("t", "Fujian Auto Parts Co., Ltd.", VALID_CODE, CONTACT)
    await reg.organisations.approve("t", org["id"])
    await reg.prefixes.apply("t", CHILD, org["id"], "auto-parts")
    await reg.prefixes.approve("t", CHILD)
    await reg.prefixes.allocate("t", CHILD)
    _account, token, _ = await reg.accounts.create("t", "ops-1", "operator")
    await reg.stats.flush()
    return org["id"], token


async def same_tables(primary: NodeApp, mirror: NodeApp) -> None:
    for table in GOVERNED:
        assert await rows(mirror, table) == await rows(primary, table), table


@pytest.fixture
async def pair(wire_node, mirror_template, tmp_path):  # noqa: F811
    mirror = await open_mirror(mirror_template, tmp_path, wire_node)
    try:
        yield Pair(wire_node, mirror)
    finally:
        await mirror.close()


async def test_a_mirror_copies_then_follows_the_registry(pair):
    primary = pair.primary.node
    assert isinstance(primary, NodeApp) and primary.registry is not None
    await govern(primary)
    await pair.loop.pull_once()  # the dump, then a full copy of the governance tables
    await same_tables(primary, pair.mirror)
    assert await rows(pair.mirror, "organisations")  # not two empty tables
    last = await primary.store.query_value(capture.LAST_CHANGE)
    assert await read_meta(pair.mirror.store, GOVERNANCE_KEY) == str(rw.txn_id(0, last))

    # changes after the copy travel as changed rows, applied with the position
    reg = primary.registry
    org = await reg.organisations.apply("t", "Second Co., Ltd.", OTHER_CODE, CONTACT)
    await reg.organisations.reject("t", org["id"], "documents unreadable")
    await pair.loop.pull_once()
    await same_tables(primary, pair.mirror)
    last = await primary.store.query_value(capture.LAST_CHANGE)
    assert await read_meta(pair.mirror.store, GOVERNANCE_KEY) == str(rw.txn_id(0, last))
    assert pair.loop.stats.governance_pages >= 2


async def test_a_mirror_out_of_step_copies_again(pair):
    await pair.loop.pull_once()
    await pair.mirror.store.apply(
        capture_position(rw.txn_id(7, 1)), logged=False
    )  # another epoch's position
    stale = "INSERT INTO {s}.organisations (legal_name, credit_code, contact, documents, state,"
    async with pair.mirror.store.atomic("test") as tx:  # a row only the mirror has
        await tx.execute(
            stale + " created_at, updated_at) VALUES ('x', 'x', '{}', '[]', 'pending', 0, 0)"
        )
    await pair.loop.pull_once()
    await same_tables(pair.primary.node, pair.mirror)


def capture_position(position: int):
    from idnode.service.replication import set_meta
    from idnode.store.effects import Effects

    return Effects(statements=(set_meta(GOVERNANCE_KEY, str(position)),))


async def test_a_promoted_mirror_runs_the_primarys_registry(pair, tmp_path):
    primary = pair.primary.node
    org_id, token = await govern(primary)
    await pair.loop.pull_once()
    await pair.mirror.close()

    cfg = load_config(tmp_path / "mirror", env={})
    cfg.replication.role = "mirror"
    await promote_store(cfg, Runtime(ManualClock(), SystemRandom()))
    assert cfg.node.prefixes == [PREFIX]  # the old primary's own prefix, replicated
    cfg.replication.role = "primary"
    (tmp_path / "mirror" / CONFIG_NAME).write_text(render_config(cfg), encoding="utf-8")
    promoted = await open_node(cfg, runtime=Runtime(ManualClock(), SystemRandom()))
    try:
        reg = promoted.registry
        assert reg is not None
        checked, findings = await reg.audit.verify()
        assert findings == [] and checked == await primary.registry.audit.count()
        # what an operator runs on the promoted node
        args = ["audit", "verify", str(tmp_path / "mirror")]
        result = await asyncio.to_thread(CliRunner().invoke, app, args)
        assert result.exit_code == 0 and f"audit log intact: {checked} entries" in result.output
        account = await reg.accounts.authenticate(token)  # the old primary's token
        assert account.name == "ops-1" and account.is_operator
        assert (await reg.organisations.get(org_id))["state"] == "approved"
        assert await reg.prefixes.get(CHILD) is not None
        # the promoted node writes on: new rows get new ids, the chain stays whole
        new = await reg.organisations.apply("t", "Third Co., Ltd.", OTHER_CODE, CONTACT)
        assert new["id"] > org_id
        _, findings = await reg.audit.verify()
        assert findings == []
    finally:
        await promoted.close()


async def test_a_promoted_mirror_on_postgresql_numbers_after_the_copied_rows(
    wire_node,  # noqa: F811
    mirror_template,  # noqa: F811
    tmp_path,
):
    """Copied rows keep their ids; PostgreSQL's identity columns do not follow explicit ids,
    so promotion moves them on (``Store.reseed_ids``) or the next organisation collides."""
    from tests.store.conftest import PG_DSN, drop_pg_schema, pg_schema_for

    await drop_pg_schema(tmp_path)
    url = f"{PG_DSN}?schema={pg_schema_for(tmp_path)}"
    mirror = await open_mirror(mirror_template, tmp_path, wire_node, store_url=url)
    try:
        org_id, token = await govern(wire_node.node)
        assert mirror.mirror is not None
        await mirror.mirror.pull_once()
        await same_tables(wire_node.node, mirror)
        await mirror.close()
        cfg = load_config(tmp_path / "mirror", env={})
        cfg.store.url, cfg.replication.role = url, "mirror"
        await promote_store(cfg, Runtime(ManualClock(), SystemRandom()))
        cfg.replication.role = "primary"
        mirror = await open_node(cfg, runtime=Runtime(ManualClock(), SystemRandom()))
        reg = mirror.registry
        assert reg is not None
        assert (await reg.accounts.authenticate(token)).name == "ops-1"
        new = await reg.organisations.apply("t", "Third Co., Ltd.", OTHER_CODE, CONTACT)
        assert new["id"] > org_id
        assert (await reg.audit.verify())[1] == []
    finally:
        await mirror.close()
        await drop_pg_schema(tmp_path)


async def test_a_source_without_the_extension_is_followed_for_identifiers_only(pair, monkeypatch):
    """HSJ answers an opcode it does not know with an error: the mirror follows its log."""
    from idnode.errors import OperationNotSupported
    from idnode.transport.wire_handler import WireHandler
    from idnode.wire import bodies

    original = WireHandler._replication_stream

    def as_hsj(self, request, body, who):
        if isinstance(body, bodies.RetrieveGovernanceRequest):
            raise OperationNotSupported("operation 1100 is not supported by this node")
        return original(self, request, body, who)

    monkeypatch.setattr(WireHandler, "_replication_stream", as_hsj)
    await govern(pair.primary.node)
    await pair.loop.pull_once()  # no error: identifiers only
    assert await pair.mirror.store.get_handle(f"{PREFIX}/demo-1") is not None
    assert pair.loop._no_governance == {pair.loop.sources[0]}
    assert await rows(pair.mirror, "organisations") == []
    await pair.loop.pull_once()  # not asked again
