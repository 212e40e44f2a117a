"""The console in a real headless Chromium (Debian's ``/usr/bin/chromium``, Playwright's
Python API), against a real ``idnode serve``: sign in, register through the template's form
with a validation error corrected, suspend the identifier and see ``idnode get`` refuse it,
approve an organisation, switch to Chinese; axe-core (vendored by ``make vendor``) finds no
serious or critical violation on any page.

``IDNODE_SCREENSHOTS=docs/console`` also saves each page in both languages (docs/console.md).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import IDNODE, ROOT, start_node, stop_node
from tests.registry.conftest import CONTACT, OTHER_CODE, VALID_CODE

CHROMIUM = "/usr/bin/chromium"
AXE = ROOT / "tests" / "console" / "vendor" / "axe.min.js"
PREFIX = "88.123.4567"
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"{CHROMIUM} missing: `make test` installs Debian's chromium when apt-get works",
        allow_module_level=True,
    )
SHOTS = os.environ.get("IDNODE_SCREENSHOTS")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    assert AXE.exists(), "axe-core missing: `make vendor` fetches it"
    running = start_node(tmp_path_factory.mktemp("console") / "node", prefix="88.123", demo=False)
    made = subprocess.run(
        [*IDNODE, "account", "create-operator", str(running.directory)],
        check=True,
        capture_output=True,
        text=True,
    )
    token = orjson.loads(made.stdout)["token"]
    api = httpx.Client(
        base_url=running.http_url + "/api/mgmt", headers={"Authorization": f"Bearer {token}"}
    )
    org = api.post(
        "/organisations",
        json={
            "legal_name": "Fujian Auto Parts Co., Ltd.",
            "credit_code": VALID_CODE,
            "contact": CONTACT,
        },
    ).json()
    api.post(f"/organisations/{org['id']}/approve").raise_for_status()
    api.post(
        "/prefixes", json={"prefix": PREFIX, "template": "auto-parts", "org_id": org["id"]}
    ).raise_for_status()
    for action in ("approve", "allocate"):
        api.post(f"/prefixes/{PREFIX}/{action}").raise_for_status()
    api.post(
        "/organisations",
        json={
            "legal_name": "Shenzhen Sensor Works Ltd.",
            "credit_code": OTHER_CODE,
            "contact": CONTACT,
        },
    ).raise_for_status()
    running.token = token
    yield running
    stop_node(running)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


def axe_violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']}"
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def check_page(page, name: str, lang: str) -> None:
    """No serious accessibility problem; the page saved when screenshots are asked for."""
    assert axe_violations(page) == [], f"{name} ({lang})"
    if SHOTS:
        folder = ROOT / SHOTS
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}-{lang}.png"), full_page=True)


def test_an_operators_day_in_the_console(node, browser):
    context = browser.new_context(locale="en-US", viewport={"width": 1200, "height": 800})
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # htmx's confirmation of an action
    base = node.http_url + "/console"

    page.goto(base + "/")
    assert page.title().startswith("Sign in")
    check_page(page, "sign-in", "en")
    page.fill("#token", node.token)
    page.click("button[type=submit] >> text=Sign in")
    page.wait_for_url(base + "/")
    assert page.locator("h1").inner_text() == "Dashboard"

    # register through the template's form; a bad part number is refused, then corrected
    page.goto(base + "/register")
    fields = {
        "#suffix": "PUMP-1",
        "#f-PART_NUMBER": "bp 1",
        "#f-PART_NAME": "Brake pad",
        "#f-MODEL": "X1",
        "#f-BATCH": "B7",
        "#f-PRODUCTION_DATE": "2026-11-02",
        "#f-MANUFACTURER": "Fujian Auto Parts",
    }
    for selector, value in fields.items():
        page.fill(selector, value)
    page.click("#register")
    error = page.locator("#err-PART_NUMBER")
    assert "does not have the required form" in error.inner_text()
    assert page.get_attribute("#f-PART_NUMBER", "aria-invalid") == "true"
    check_page(page, "register-error", "en")
    page.fill("#f-PART_NUMBER", "BP-1")
    page.click("#register")
    page.wait_for_url(f"{base}/handle/{PREFIX}/PUMP-1?created=1")
    assert "The identifier was registered." in page.locator("[role=status]").inner_text()
    assert page.locator("img[src^='/qr/']").evaluate("i => i.naturalWidth") > 0
    assert get(node, f"{PREFIX}/PUMP-1").returncode == 0

    # search by batch (htmx swaps the results in place)
    page.goto(base + "/identifiers")
    page.fill("#f-BATCH", "B7")
    page.click("button >> text=Search")
    page.locator("#results a >> text=88.123.4567/PUMP-1").wait_for()
    check_page(page, "identifiers", "en")

    # bulk import: upload a small file, htmx polls the progress until the job is done
    page.goto(base + "/imports")
    rows = "".join(f"IMP-{i},BP-{i},Brake pad,X1,B8,2026-11-02,Fujian\n" for i in range(5))
    page.set_input_files("#import-file", files=[{
        "name": "parts.csv", "mimeType": "text/csv",
        "buffer": ("suffix,PART_NUMBER,PART_NAME,MODEL,BATCH,PRODUCTION_DATE,MANUFACTURER\n"
                   + rows + "BAD,bad part,x,X1,B8,2026-11-02,F\n").encode()}])  # fmt: skip
    page.click("#start-import")
    page.locator("#job-state >> text=done").wait_for()
    assert page.locator("#bar").evaluate("b => b.value === b.max && b.max === 6")
    assert "5 imported, 1 rejected" in page.locator("#job-state").inner_text()
    assert page.locator("#rejects").is_visible()
    check_page(page, "import", "en")
    job_url = page.url
    page.goto(base + "/imports")
    check_page(page, "imports", "en")
    assert get(node, f"{PREFIX}/IMP-4").returncode == 0

    # suspend with confirmation: `idnode get` is refused from then on
    page.goto(f"{base}/handle/{PREFIX}/PUMP-1")
    page.fill("#reason", "recall R-1")
    page.click("#suspend")
    page.locator("#restore").wait_for()
    assert "The identifier is suspended." in page.locator("[role=status]").inner_text()
    refused = get(node, f"{PREFIX}/PUMP-1")
    assert refused.returncode != 0, refused.stdout
    check_page(page, "identifier", "en")

    # the review queue: the credit code's check shown, the application approved
    page.goto(base + "/review")
    section = page.locator("section", has_text="Shenzhen Sensor Works Ltd.")
    assert "matches (GB 32100-2015)" in section.inner_text()
    check_page(page, "review", "en")
    section.locator("button >> text=Approve").click()
    assert "is approved" in page.locator("[role=status]").inner_text()
    assert len(page.locator("#admin-token").inner_text()) > 20
    assert page.locator("section", has_text="Shenzhen Sensor Works Ltd.").count() == 0

    page.goto(base + "/operations")
    assert "The chain is intact" in page.locator("#chain").inner_text()
    check_page(page, "operations", "en")

    page.goto(base + "/")
    page.locator("#chart svg").wait_for()  # ECharts drew the chart
    check_page(page, "dashboard", "en")

    # the switch: Chinese from now on, numbers and dates as Chinese writes them
    page.click("#lang-zh-CN")
    page.wait_for_url(base + "/")
    assert page.locator("h1").inner_text() == "概览"
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    check_page(page, "dashboard", "zh-CN")
    for path, name in (
        (f"/handle/{PREFIX}/PUMP-1", "identifier"),
        ("/review", "review"),
        ("/identifiers?BATCH=B7", "identifiers"),
        ("/imports", "imports"),
        ("/operations", "operations"),
    ):
        page.goto(base + path)
        check_page(page, name, "zh-CN")
    page.goto(job_url)
    assert "已完成" in page.locator("#job-state").inner_text()
    check_page(page, "import", "zh-CN")
    page.goto(f"{base}/handle/{PREFIX}/PUMP-1")
    assert "已暂停" in page.locator("h1").inner_text()
    assert "年" in page.locator("#history-h + table tbody").inner_text()  # 2026年11月...
    page.goto(base + "/register")
    page.fill("#suffix", "bad suffix")
    page.click("#register")
    assert "不得包含空格" in page.locator("#err-suffix").inner_text()
    check_page(page, "register-error", "zh-CN")
    page.locator("header button").click()  # sign out
    page.wait_for_url(base + "/login")
    check_page(page, "sign-in", "zh-CN")
    context.close()


def get(node, handle: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*IDNODE, "get", handle, "--server", f"{node.host}:{node.port}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
