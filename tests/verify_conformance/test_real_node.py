"""(a) The whole suite against a real ``idnode serve``: every check passes, four reports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

from typer.testing import CliRunner

from idnode.verify.conformance.catalogue import all_checks
from idnode.verify.conformance.cli import verify_app


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)


def test_every_check_passes_with_all_reports(env, tmp_path):
    node = env.node
    out = {k: tmp_path / f"report.{k}" for k in ("json", "xml", "html")}
    result = CliRunner().invoke(
        verify_app,
        [
            "--udp",
            f"{node.host}:{node.port}",
            "--tcp",
            f"{node.host}:{node.port}",
            "--http",
            node.http_url,
            "--admin",
            "300:0.NA/20.500.123",
            "--private-key",
            str(env.key_path),
            "--idis",  # idnode serves the IDIS SDK too ([protocol] profile = "auto")
            "--json",
            str(out["json"]),
            "--junit",
            str(out["xml"]),
            "--html",
            str(out["html"]),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.output

    doc = json.loads(out["json"].read_text())
    statuses = {r["id"]: r["status"] for r in doc["results"]}
    assert set(statuses) == {c.id for c in all_checks()}
    assert {s for s in statuses.values()} == {"passed"}, [
        (i, s) for i, s in statuses.items() if s != "passed"
    ]
    assert doc["passed"] is True and doc["cleanup_left"] == []
    assert doc["performance"]["sample"]["udp"]["count"] > 0

    root = ET.parse(out["xml"]).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == len(statuses)
    assert not root.findall(".//failure") and not root.findall(".//error")

    page = out["html"].read_text()
    tags = _Tags()
    tags.feed(page)
    assert "table" in tags.tags and "svg" in tags.tags
    assert page.count("<tr>") >= len(statuses)
    assert "Performance" in page


def test_run_leaves_no_test_identifiers(env):
    """The run above (and every run) deletes what it wrote under --prefix."""
    import httpx

    r = httpx.get(env.node.http_url + "/api/handles/20.500.123/idnode-verify-x-rec")
    assert r.status_code == 404
