"""The console's operations page on a parent node with a real enrolled child: the child's
report (through the hierarchy's ``ReportBook``, as ``POST /api/hierarchy/reports`` stores it)
shows as healthy with the totals it reported, and once its reports stop, as unhealthy with
the reason. In process, on the parent's manual clock."""

from __future__ import annotations

import re

import httpx

from idnode.registry.accounts import OPERATOR
from idnode.transport.http import build_app
from tests.hierarchy.nodes import parent_node, request


def rows_of(page: str) -> list[str]:
    table = re.search(
        r'<table aria-labelledby="children-h" id="children">(.*?)</table>', page, re.S
    )
    assert table, "the children's table"
    return re.findall(r"<tr><td>(.*?)</tr>", table.group(1), re.S)


async def test_children_health_and_totals_as_reported(tmp_path):
    async with parent_node(tmp_path) as parent:
        assert parent.hierarchy is not None and parent.registry is not None
        delegations = parent.hierarchy.delegations
        token = (await delegations.allocate("88.123"))["token"]
        report_token = (await delegations.enrol(request(token)))["report_token"]
        prefixes = [{"prefix": "88.123", "registrations": 1200, "resolutions": 34000},
                    {"prefix": "88.123.4567", "registrations": 34, "resolutions": 500}]  # fmt: skip
        book = parent.hierarchy.book
        await book.accept(report_token, {"prefix": "88.123", "health": {"status": "ok"},
                                         "report_interval": 60, "prefixes": prefixes})  # fmt: skip
        _, op_token, _ = await parent.registry.accounts.create("t", "op", OPERATOR)
        app = build_app(parent, extra_routes=parent.routes)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as c:
            assert (await c.post("/console/login", data={"token": op_token})).status_code == 303
            healthy = (await c.get("/console/operations")).text
            parent.runtime.clock.advance(3 * 60 + 1)  # three reports missed
            stale = (await c.get("/console/operations")).text
    (row,) = rows_of(healthy)
    assert row.startswith("88.123</td>") and "healthy" in row
    assert '<td class="num">1,234</td><td class="num">34,500</td>' in row
    (row,) = rows_of(stale)
    assert "healthy" not in row and "no report for 181s" in row
