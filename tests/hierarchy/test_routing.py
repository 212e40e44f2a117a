"""The hierarchy's routing stage, and what each transport makes of its answers (issue 13, item 3).

The stage is tested on its own (referrals, recursion, DNRF, suspended children), then inside a
real node's resolver behind the REST API, the proxy and the wire handler: before, only the wire
handler asked the hierarchy, so a recursive node answered REST and the proxy with 400 "not
responsible" and a parent answered REST with 404 for its child's handles. The upstream and the
children are stand-ins here; ``tests/e2e/test_hierarchy.py`` runs the same over real nodes.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from idnode.app import NodeApp, open_node
from idnode.bootstrap import init_node
from idnode.client.resolve import resolution_request
from idnode.codes import OpFlag, ResponseCode
from idnode.config import load_config
from idnode.errors import HandleNotFound, NotResponsible, ServerBusy
from idnode.hierarchy.delegation import ENROLLED, SUSPENDED, LiveChild
from idnode.hierarchy.recursive import RecursiveResolver
from idnode.hierarchy.resolver import Answer as Upstreamed
from idnode.hierarchy.roles import RECURSIVE, SECONDARY
from idnode.hierarchy.service import REFERRAL_TTL, HierarchyRouting
from idnode.model import HS_SITE, URL, HandleValue, handle_key
from idnode.names import PrefixSet
from idnode.runtime import ManualClock, Runtime, SystemRandom, system
from idnode.service.resolve import Referral, ResolutionQuery, Resolver, Values
from idnode.transport.http import build_app
from idnode.transport.wire_handler import WireHandler
from idnode.wire import bodies

PREFIX = "20.500.77"
CHILD = f"{PREFIX}.9"  # delegated to a child node
CHILD_SITE = b"child-site"  # what the child enrolled with (opaque to routing)
FOREIGN = "88.123.4567/part-1"  # homed at an enterprise node elsewhere in the tree
TTL = 300


class Upstream:
    """Stands in for GlobalResolver: one record, not found for anything else, or down."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.down = False

    async def resolve(self, handle: str) -> Upstreamed:
        self.calls.append(handle)
        if self.down:
            raise ServerBusy("upstream down")
        if handle_key(handle) != handle_key(FOREIGN):
            raise HandleNotFound(f"{handle} not found")
        values = (
            HandleValue(1, URL, b"https://example.com/part-1"),
            HandleValue(2, "DESC", b"a part"),
        )
        return Upstreamed(handle, values, TTL)


def stage(
    clock: ManualClock,
    *,
    role: str,
    homed: tuple[str, ...] = (),
    upstream: Upstream | None = None,
    children: tuple[LiveChild, ...] = (),
) -> HierarchyRouting:
    recursive = None
    if upstream is not None:
        recursive = RecursiveResolver(upstream, clock=clock, stale_for=600)  # type: ignore[arg-type]
    routing = HierarchyRouting(role=role, homed=PrefixSet(homed), clock=clock, recursive=recursive)
    routing.set_children({handle_key(c.prefix): c for c in children})  # what Hierarchy loads
    return routing


# -- the stage --------------------------------------------------------------------------------
async def test_the_recursive_role_recurses_for_every_foreign_handle_unasked():
    clock, up = ManualClock(), Upstream()
    routing = stage(clock, role=RECURSIVE, upstream=up)
    answer = await routing.route(ResolutionQuery(FOREIGN, types=("URL",)), recursion=False)
    assert isinstance(answer, Values) and not answer.stale
    assert [v.index for v in answer.values] == [1]  # selected as a local answer would be
    assert answer.expiration == int(clock()) + TTL


async def test_stale_answers_carry_an_expiration_already_reached():
    clock, up = ManualClock(), Upstream()
    routing = stage(clock, role=RECURSIVE, upstream=up)
    await routing.route(ResolutionQuery(FOREIGN), recursion=False)
    clock.advance(TTL + 10)
    up.down = True
    answer = await routing.route(ResolutionQuery(FOREIGN), recursion=False)
    assert isinstance(answer, Values) and answer.stale
    assert answer.expiration == int(clock())


async def test_another_role_recurses_only_when_asked():
    clock, up = ManualClock(), Upstream()
    routing = stage(clock, role=SECONDARY, homed=(PREFIX,), upstream=up)
    assert await routing.route(ResolutionQuery(FOREIGN), recursion=False) is None
    assert isinstance(await routing.route(ResolutionQuery(FOREIGN), recursion=True), Values)


async def test_a_delegated_child_is_referred_to_and_own_handles_go_on_locally():
    clock = ManualClock()
    child = LiveChild(CHILD, ENROLLED, CHILD_SITE)
    routing = stage(clock, role=SECONDARY, homed=(PREFIX,), children=(child,))
    answer = await routing.route(ResolutionQuery(f"{CHILD}/x"), recursion=False)
    assert answer == Referral(
        f"0.NA/{CHILD}", (HandleValue(1, HS_SITE, CHILD_SITE),), int(clock()) + REFERRAL_TTL
    )
    assert await routing.route(ResolutionQuery(f"{PREFIX}/x"), recursion=False) is None
    assert await routing.route(ResolutionQuery(FOREIGN), recursion=True) is None  # no recursion
    with pytest.raises(NotResponsible, match="served by the child"):
        await routing.route(ResolutionQuery(f"{CHILD}/x", do_not_refer=True), recursion=False)


async def test_a_suspended_child_is_not_referred_to():
    child = LiveChild(CHILD, SUSPENDED, CHILD_SITE)
    routing = stage(ManualClock(), role=SECONDARY, homed=(PREFIX,), children=(child,))
    with pytest.raises(NotResponsible, match="suspended"):
        await routing.route(ResolutionQuery(f"{CHILD}/x"), recursion=False)


async def test_recursion_asked_for_a_childs_handle_recurses_instead_of_referring():
    clock, up = ManualClock(), Upstream()
    child = LiveChild("88.123", ENROLLED, CHILD_SITE)
    routing = stage(clock, role=SECONDARY, homed=("88",), upstream=up, children=(child,))
    assert isinstance(await routing.route(ResolutionQuery(FOREIGN), recursion=False), Referral)
    assert isinstance(await routing.route(ResolutionQuery(FOREIGN), recursion=True), Values)


# -- inside a node: REST, the proxy, the wire ---------------------------------------------------
@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Path]:
    """A node homing PREFIX (a parent) and one homing nothing (a recursive node)."""
    import asyncio

    base = tmp_path_factory.mktemp("routing")

    async def make() -> None:
        await init_node(base / "parent", name="parent", prefixes=[PREFIX], runtime=system())
        await init_node(base / "recursive", name="recursive", prefixes=[], runtime=system())

    asyncio.run(make())
    return {"parent": base / "parent", "recursive": base / "recursive"}


@dataclasses.dataclass
class Served:
    node: NodeApp
    http: httpx.AsyncClient
    wire: WireHandler
    clock: ManualClock
    upstream: Upstream


async def serve(templates, tmp_path: Path, which: str) -> AsyncIterator[Served]:
    directory = tmp_path / which
    shutil.copytree(templates[which], directory)
    clock, up = ManualClock(), Upstream()
    node = await open_node(load_config(directory, env={}), runtime=Runtime(clock, SystemRandom()))
    if which == "recursive":
        routing = stage(clock, role=RECURSIVE, upstream=up)
    else:
        children = (LiveChild(CHILD, ENROLLED, CHILD_SITE),)
        routing = stage(clock, role=SECONDARY, homed=(PREFIX,), children=children)
    resolver = Resolver(
        node.store,
        node.homed,
        read_check=node.admin.may_read_restricted,
        gate=node.resolver.gate,
        stages=(routing,),
        on_error=routing.count_error,
    )
    node = dataclasses.replace(node, resolver=resolver)  # what open_node builds for a role
    transport = httpx.ASGITransport(app=build_app(node))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            yield Served(node, client, WireHandler(node), clock, up)
    finally:
        await node.close()


@pytest.fixture
async def recursive(templates, tmp_path) -> AsyncIterator[Served]:
    async for served in serve(templates, tmp_path, "recursive"):
        yield served


@pytest.fixture
async def parent(templates, tmp_path) -> AsyncIterator[Served]:
    async for served in serve(templates, tmp_path, "parent"):
        yield served


async def test_a_recursive_node_answers_the_rest_api(recursive):
    resp = await recursive.http.get(f"/api/handles/{FOREIGN}", params={"type": "URL"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["responseCode"], body["handle"]) == (1, FOREIGN)
    assert [v["data"]["value"] for v in body["values"]] == ["https://example.com/part-1"]
    missing = await recursive.http.get("/api/handles/88.123.4567/nothing")
    assert (missing.status_code, missing.json()["responseCode"]) == (404, 100)
    assert recursive.upstream.calls == [FOREIGN, "88.123.4567/nothing"]


async def test_a_recursive_node_answers_the_proxy(recursive):
    resp = await recursive.http.get(f"/{FOREIGN}")
    assert resp.status_code == 302, resp.text
    assert resp.headers["location"] == "https://example.com/part-1"


async def test_a_recursive_node_answers_the_wire_with_the_upstream_expiration(recursive):
    answer = await recursive.wire.dispatch(resolution_request(FOREIGN))
    assert answer.header.response_code == ResponseCode.SUCCESS
    assert answer.header.expiration == int(recursive.clock()) + TTL
    assert isinstance(answer.body, bodies.ResolutionResponse)
    assert [v.index for v in answer.body.values] == [1, 2]


async def test_a_parent_refers_rest_clients_to_its_child_as_hsj_does(parent):
    resp = await parent.http.get(f"/api/handles/{CHILD}/x")
    assert resp.status_code == 300, resp.text  # HSJ: SC_MULTIPLE_CHOICES for a referral
    body = resp.json()
    assert body["responseCode"] == ResponseCode.SERVICE_REFERRAL
    assert (body["handle"], body["referralHandle"]) == (f"{CHILD}/x", f"0.NA/{CHILD}")
    assert [(v["index"], v["type"]) for v in body["values"]] == [(1, HS_SITE)]
    proxied = await parent.http.get(f"/{CHILD}/x")  # the proxy: the same JSON, no redirect
    assert (proxied.status_code, proxied.json()) == (300, body)
    refused = await parent.http.get(f"/api/handles/{CHILD}/x", params={"doNotRefer": "true"})
    assert (refused.status_code, refused.json()["responseCode"]) == (400, 301)


async def test_a_parent_refers_wire_clients_to_its_child(parent):
    answer = await parent.wire.dispatch(resolution_request(f"{CHILD}/x"))
    assert answer.header.response_code == ResponseCode.SERVICE_REFERRAL
    assert answer.header.expiration == int(parent.clock()) + REFERRAL_TTL
    assert answer.body == bodies.ServiceReferralResponse(
        f"0.NA/{CHILD}", (HandleValue(1, HS_SITE, CHILD_SITE),)
    )
    dnrf = resolution_request(f"{CHILD}/x")
    dnrf.header = dataclasses.replace(dnrf.header, flags=dnrf.header.flags | OpFlag.DNRF)
    with pytest.raises(NotResponsible):
        await parent.wire.execute(dnrf, None)
