"""Issue 13: the two ways of allocating a prefix no longer ignore each other.

A child prefix in the parent's registry space (an enterprise prefix its coding rules accept)
is delegated only after the registry's real-name review, and delegation moves it to
``delegated`` in the transaction that creates the child; the registry's own ``allocate``
then refuses it, so it never overwrites the child's published HS_SITE and key. A prefix
outside that space (a top-level node's secondaries, the root's top-level prefixes) is
allocated directly, as before.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from idnode.hierarchy import delegation
from idnode.hierarchy.delegation import DelegationError
from idnode.model import HS_PUBKEY, HS_SITE
from idnode.registry import prefixes as registry_prefixes
from idnode.registry.errors import RegistryError
from tests.hierarchy.nodes import CHILD_SITE, parent_node, request, reviewed

ENTERPRISE = "88.123.4567"


@pytest.fixture
async def secondary(tmp_path):
    """A secondary node homing 88.123: 88.123.4567 lies in its registry space."""
    async with parent_node(tmp_path, prefix="88.123", role="secondary") as node:
        yield node


async def test_the_review_flow_cannot_allocate_a_delegated_prefix(secondary):
    node, reg = secondary, secondary.registry
    d = node.hierarchy.delegations
    await reviewed(node, ENTERPRISE)
    token = (await d.allocate(ENTERPRISE))["token"]
    await d.enrol(request(token, prefix=ENTERPRISE))
    published = await node.store.get_handle("0.NA/" + ENTERPRISE)

    with pytest.raises(RegistryError, match="prefix is delegated, not approved"):
        await reg.prefixes.allocate("t", ENTERPRISE)

    assert await node.store.get_handle("0.NA/" + ENTERPRISE) == published
    values = {v.type: v.data for v in published}
    assert values[HS_SITE] == CHILD_SITE and values[HS_PUBKEY]
    assert ENTERPRISE not in await node.store.homed_prefixes()  # the child homes it
    assert node.hierarchy.routing.delegated(ENTERPRISE + "/part-1").prefix == ENTERPRISE
    assert (await reg.prefixes.get(ENTERPRISE))["state"] == "delegated"


async def test_an_unreviewed_prefix_in_the_registry_space_is_not_delegated(secondary):
    node, reg = secondary, secondary.registry
    d = node.hierarchy.delegations
    with pytest.raises(DelegationError) as refused:
        await d.allocate(ENTERPRISE)
    message = refused.value.message
    assert "no application for it exists" in message
    commands = ("idnode org apply", "idnode org approve", f"idnode prefix apply {ENTERPRISE}",
                f"idnode prefix approve {ENTERPRISE}")  # fmt: skip
    assert all(command in message for command in commands), message

    await reviewed(node, ENTERPRISE, approve=False)  # applied for, not yet approved
    with pytest.raises(DelegationError, match="it is applied"):
        await d.allocate(ENTERPRISE)
    assert await node.store.query("SELECT * FROM {s}.children") == []

    await reg.prefixes.approve("t", ENTERPRISE)
    await d.allocate(ENTERPRISE)
    await d.allocate(ENTERPRISE)  # a new token for the same child: still delegated
    assert (await reg.prefixes.get(ENTERPRISE))["state"] == "delegated"
    changes = [(h["from_state"], h["to_state"]) for h in await reg.prefixes.history(ENTERPRISE)]
    assert changes[-1] == ("approved", "delegated") and changes.count(changes[-1]) == 1
    (entry,) = [a for a in await reg.audit.entries(0, 1000) if a["action"] == "prefix.delegated"]
    assert entry["target"] == ENTERPRISE and entry["actor"] == "console"


async def test_a_prefix_the_registry_allocated_is_not_delegated(secondary):
    node, reg = secondary, secondary.registry
    await reviewed(node, ENTERPRISE)
    await reg.prefixes.allocate("t", ENTERPRISE)  # homed here now
    with pytest.raises(DelegationError, match="homed by this node itself"):
        await node.hierarchy.delegations.allocate(ENTERPRISE)
    node.homed.discard(ENTERPRISE)  # as if homing had not reached this process yet
    with pytest.raises(DelegationError, match="it is allocated"):
        await node.hierarchy.delegations.allocate(ENTERPRISE)
    assert await node.store.query("SELECT * FROM {s}.children") == []


async def test_a_prefix_outside_the_registry_space_is_allocated_directly(tmp_path):
    # a top-level node's secondaries: 88.123 breaks the enterprise coding rule under 88
    async with parent_node(tmp_path, prefix="88", role="top-level") as node:
        token = (await node.hierarchy.delegations.allocate("88.123"))["token"]
        await node.hierarchy.delegations.enrol(request(token))
        assert await node.registry.prefixes.list() == []


def test_the_registry_state_names_are_the_ones_delegation_uses():
    assert delegation.PREFIX_APPROVED == registry_prefixes.APPROVED
    assert delegation.PREFIX_DELEGATED == registry_prefixes.DELEGATED


def test_child_allocate_names_the_review_commands(tmp_path):
    from idnode.cli import app

    runner = CliRunner()
    directory = str(tmp_path / "sec")
    init = ["init", directory, "--role", "secondary", "--prefix", "88.123", "--name", "sec"]
    assert runner.invoke(app, init).exit_code == 0
    result = runner.invoke(app, ["child", "allocate", ENTERPRISE, "-d", directory])
    assert result.exit_code == 1
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "real-name review" in said and f"idnode prefix approve {ENTERPRISE}" in said
