"""The proxy's HTML page and SVG labels in a real browser: headless Chromium (Debian's
``/usr/bin/chromium``, which ``make test`` installs when missing) driven by Playwright.

What a browser shows is what matters for an attacker-controlled value: the XSS payloads
stored in the record must appear as text and never run."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import pytest

from tests.conftest import stop_node
from tests.transport_http.proxy_node import LOC, NO_URL, PAYLOAD, XSS, start_proxy_node

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"{CHROMIUM} missing: `make test` installs Debian's chromium when apt-get works",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    running = start_proxy_node(tmp_path_factory.mktemp("browser") / "node")
    yield running
    stop_node(running)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--no-sandbox"])  # fmt: skip
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-US")
    opened = context.new_page()
    yield opened
    context.close()


def test_xss_payloads_stay_text(node, page):
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    response = page.goto(f"{node.http_url}/{XSS}")
    assert response.status == 200
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    assert page.locator("script").count() == 0 and page.locator("img").count() == 0
    cells = page.locator("tr.value td:nth-child(3)").all_inner_texts()
    assert cells[0] == PAYLOAD  # shown as the text it is
    types = page.locator("tr.value td:nth-child(2)").all_inner_texts()
    assert types[1] == '"><script>window.__pwned=4</script>'
    assert page.locator("a").count() == 0  # javascript: never becomes a link


def test_the_values_page_in_english_and_chinese(node, browser):
    for locale, header, title in (("en-US", "Index", "Handle"), ("zh-CN", "索引", "标识")):
        context = browser.new_context(locale=locale)
        page = context.new_page()
        page.goto(f"{node.http_url}/{LOC}?noredirect")
        assert page.locator("th").first.inner_text() == header
        assert page.title().startswith(title)
        link = page.locator("a")
        assert link.count() == 1
        assert link.get_attribute("href") == "https://first-url.example.org/"
        assert page.locator("tr.value").count() == 3
        context.close()


def test_a_record_without_url_shows_its_page(node, page):
    page.goto(f"{node.http_url}/{NO_URL}")
    assert "泵 7 号 pump seven" in page.locator("#values").inner_text()


def test_an_svg_label_decodes_to_the_proxy_url(node, page):
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    svg = httpx.get(f"{node.http_url}/qr/{LOC}.svg?scale=6")
    assert svg.headers["content-type"] == "image/svg+xml"
    page.set_content(f'<body style="margin:0;background:#fff">{svg.text.split("?>", 1)[1]}</body>')
    shot = page.locator("svg").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)))
    assert [f.text for f in found] == [f"{node.http_url}/{LOC}"]
