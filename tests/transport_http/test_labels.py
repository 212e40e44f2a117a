"""QR labels (``GET /qr/{handle}.png``, ``idnode qr``), decoded back with zxing-cpp to the
proxy URL they must carry, and Data Matrix labels (``GET /datamatrix/...``, ``--symbol
datamatrix``): a GS1 key's decodes as a GS1 Data Matrix (symbology ``]d2``, FNC1) of its
element string. SVG QR labels are decoded in tests/transport_http/test_proxy_browser.py
(Chromium rasterises them); SVG Data Matrix here, drawn back from its path."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import zxingcpp
from PIL import Image, ImageDraw

from idnode.cli_qr import label_file_name
from tests.conftest import IDNODE, stop_node
from tests.transport_http.proxy_node import (
    GS1_BATCH,
    LOC,
    NO_URL,
    PREFIX,
    SPACE,
    start_proxy_node,
)

BASE = "https://id.example.cn"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    running = start_proxy_node(tmp_path_factory.mktemp("labels") / "node")
    yield running
    stop_node(running)


def decode(png: bytes) -> tuple[str, str]:
    """The text and error-correction level of the one QR code in ``png``."""
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1, "exactly one QR code"
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode
    return found[0].text, found[0].ec_level


def decode_matrix(png: bytes) -> tuple[str, str, zxingcpp.ContentType]:
    """Text, symbology identifier and content type of the one Data Matrix in ``png``."""
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1, "exactly one code"
    assert found[0].format == zxingcpp.BarcodeFormat.DataMatrix
    return found[0].text, found[0].symbology_identifier, found[0].content_type


def svg_to_png(svg: bytes) -> bytes:
    """Draw the runs of our SVG label's path (``M x y h w v s h -w z``) back into a bitmap."""
    text = svg.decode()
    width, height = (int(v) for v in re.search(r'width="(\d+)" height="(\d+)"', text).groups())
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for x, y, w, h in re.findall(r"M(\d+) (\d+)h(\d+)v(\d+)h-\d+z", text):
        x0, y0 = int(x), int(y)
        draw.rectangle((x0, y0, x0 + int(w) - 1, y0 + int(h) - 1), fill=0)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_a_gs1_key_gets_a_gs1_data_matrix_of_its_element_string(node):
    answer = httpx.get(f"{node.http_url}/datamatrix/{GS1_BATCH}.png?scale=6")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    text, symbology, content = decode_matrix(answer.content)
    assert (text, symbology) == ("(01)09506000134352(10)ABC", "]d2")  # FNC1 first: GS1
    assert content == zxingcpp.ContentType.GS1
    svg = httpx.get(f"{node.http_url}/datamatrix/{GS1_BATCH}.svg?scale=4&border=2")
    assert svg.headers["content-type"] == "image/svg+xml"
    assert decode_matrix(svg_to_png(svg.content))[:2] == ("(01)09506000134352(10)ABC", "]d2")


def test_other_handles_get_a_data_matrix_of_their_proxy_url(node):
    answer = httpx.get(f"{node.http_url}/datamatrix/{LOC}.png?scale=5")
    assert decode_matrix(answer.content)[:2] == (f"{node.http_url}/{LOC}", "]d1")
    missing = httpx.get(f"{node.http_url}/datamatrix/{PREFIX}/01/09506000134352/10/NOPE.png")
    assert missing.status_code == 404 and missing.json()["responseCode"] == 100
    bad = httpx.get(f"{node.http_url}/datamatrix/{LOC}.gif")
    assert bad.status_code == 400 and "/datamatrix/" in bad.json()["message"]


def test_cli_makes_gs1_data_matrix_labels_for_a_batch(tmp_path):
    one = tmp_path / "one.png"
    done = idnode_qr(GS1_BATCH, "--symbol", "datamatrix", "--base-url", BASE, "--out", str(one))
    assert done.returncode == 0, done.stderr
    assert decode_matrix(one.read_bytes())[:2] == ("(01)09506000134352(10)ABC", "]d2")
    csv = tmp_path / "lots.csv"
    csv.write_text("suffix\n01/09506000134352/10/L1\n01/09506000134352/21/7\n", encoding="utf-8")
    out = tmp_path / "dm"
    done = idnode_qr("--batch", str(csv), "--prefix", PREFIX, "--base-url", BASE, "--out",
                     str(out), "--format", "png", "--symbol", "datamatrix")  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = {
        "01/09506000134352/10/L1": "(01)09506000134352(10)L1",
        "01/09506000134352/21/7": "(01)09506000134352(21)7",
    }
    for suffix, element_string in expected.items():
        png = (out / label_file_name(f"{PREFIX}/{suffix}", "png")).read_bytes()
        assert decode_matrix(png)[:2] == (element_string, "]d2")


def test_the_http_label_decodes_to_the_proxy_url(node):
    answer = httpx.get(f"{node.http_url}/qr/{LOC}.png")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert decode(answer.content) == (f"{node.http_url}/{LOC}", "M")
    # ... and that URL is the proxy's redirect
    followed = httpx.get(decode(answer.content)[0], headers={"accept": "text/html"})
    assert followed.status_code == 302


def test_label_options_scale_border_and_error_correction(node):
    answer = httpx.get(f"{node.http_url}/qr/hdl:{NO_URL}.png?scale=8&border=2&error=H")
    text, level = decode(answer.content)
    assert (text, level) == (f"{node.http_url}/{NO_URL}", "H")
    width, height = Image.open(io.BytesIO(answer.content)).size
    modules = width // 8 - 2 * 2
    assert width == height and width % 8 == 0 and (modules - 17) % 4 == 0  # a QR version


def test_a_handle_needing_escapes_is_escaped_in_the_url(node):
    answer = httpx.get(f"{node.http_url}/qr/{quote(SPACE, safe='/')}.png")
    text, _ = decode(answer.content)
    assert text == f"{node.http_url}/{PREFIX}/a%20b%3Fc"
    assert httpx.get(text, headers={"accept": "text/html"}).status_code == 302


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        (f"/qr/{PREFIX}/no-such-part.png", 404, 100),
        (f"/qr/{LOC}.gif", 400, 4),
        (f"/qr/{LOC}", 400, 4),
        (f"/qr/{LOC}.png?error=X", 400, 4),
        (f"/qr/{LOC}.png?scale=0", 400, 4),
        (f"/qr/{LOC}.png?scale=abc", 400, 4),
    ],
)
def test_label_refusals_are_json(node, path, status, code):
    answer = httpx.get(node.http_url + path)
    assert answer.status_code == status
    assert answer.json()["responseCode"] == code and answer.json()["message"]


def idnode_qr(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*IDNODE, "qr", *args], capture_output=True, text=True, timeout=120)


def test_cli_makes_one_label(tmp_path):
    out = tmp_path / "pump.png"
    done = idnode_qr(f"hdl:{LOC}", "--base-url", BASE, "--out", str(out), "--error", "q")
    assert done.returncode == 0, done.stderr
    assert decode(out.read_bytes()) == (f"{BASE}/{LOC}", "Q")


def test_cli_batch_labels_a_whole_import(tmp_path):
    csv = tmp_path / "parts.csv"
    csv.write_text("suffix,PART_NAME\npump-1,Pump\npump-2,泵\nvalve 3,Valve\n", encoding="utf-8")
    out = tmp_path / "labels"
    done = idnode_qr("--batch", str(csv), "--prefix", PREFIX, "--base-url", BASE,
                     "--out", str(out), "--format", "png")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote 3 labels" in done.stdout
    for suffix in ("pump-1", "pump-2", "valve 3"):
        handle = f"{PREFIX}/{suffix}"
        text, _ = decode((out / label_file_name(handle, "png")).read_bytes())
        assert text == f"{BASE}/{quote(handle, safe='/')}"
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text(f'{{"handle": "{LOC}"}}\n', encoding="utf-8")
    done = idnode_qr("--batch", str(jsonl), "--base-url", BASE, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / label_file_name(LOC, "svg")).read_bytes().startswith(b"<?xml")


@pytest.mark.parametrize(
    "args",
    [
        (LOC, "--base-url", "id.example.cn"),
        (LOC, "--base-url", BASE, "--error", "Z"),
        (LOC, "--base-url", BASE, "--scale", "0"),
        ("--base-url", BASE),
        (LOC, "--base-url", BASE, "--out", "label.gif"),
        (LOC, "--base-url", BASE, "--symbol", "aztec"),
    ],
)
def test_cli_refusals_are_one_line_and_exit_2(args):
    done = idnode_qr(*args)
    assert done.returncode == 2
    assert done.stderr.startswith("error:") and done.stderr.strip().count("\n") == 0


def test_cli_batch_of_suffixes_needs_a_prefix(tmp_path):
    csv = tmp_path / "parts.csv"
    csv.write_text("suffix\npump-1\n", encoding="utf-8")
    done = idnode_qr("--batch", str(csv), "--base-url", BASE, "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "--prefix" in done.stderr
    assert not (tmp_path / "o").exists()


def test_label_file_names_are_one_per_handle(tmp_path: Path):
    assert label_file_name(f"{PREFIX}/a/b", "png") == "20.500.321%2Fa%2Fb.png"
