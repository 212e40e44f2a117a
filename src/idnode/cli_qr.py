"""``idnode qr``: QR labels for identifiers, one or a whole import's worth.

    idnode qr 20.500.123/pump-7 --base-url https://id.example.cn --out pump-7.png
    idnode qr --batch parts.csv --prefix 20.500.123 --base-url https://id.example.cn --out labels/

A label carries the proxy URL of its handle (``transport/labels.py``). ``--batch`` reads the
file an import was made from -- CSV with a ``handle`` or ``suffix`` column, JSON lines with
either key -- or plain text with one handle per line, and writes one file per handle into the
``--out`` directory, named by the percent-encoded handle (``20.500.123%2Fpump-7.svg``: one
name per handle, and back). No node is needed: the labels only carry URLs.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import orjson
import typer

from idnode.cli_common import USAGE_ERROR, fail, out
from idnode.errors import IdnodeError
from idnode.transport.labels import FORMATS, LabelOptions, label
from idnode.transport.proxy import handle_from_path


def _handles_in(text: str, prefix: str | None) -> list[str]:
    """The handles a batch file names (module docstring); a suffix needs ``--prefix``."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    rows: list[dict] = []
    if lines[0].lstrip().startswith("{"):
        try:
            rows = [orjson.loads(line) for line in lines]
        except orjson.JSONDecodeError as exc:
            fail(f"batch file: invalid JSON line: {exc}", USAGE_ERROR)
    else:
        header = next(csv.reader([lines[0]]))
        if "handle" in header or "suffix" in header:
            rows = list(csv.DictReader(io.StringIO(text)))
        else:
            return [handle_from_path(line.strip()) for line in lines]
    handles = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            fail(f"batch file: row {n} is not an object", USAGE_ERROR)
        if row.get("handle"):
            handles.append(handle_from_path(str(row["handle"]).strip()))
        elif row.get("suffix"):
            if not prefix:
                fail("batch file names suffixes: give --prefix", USAGE_ERROR)
            handles.append(f"{prefix}/{str(row['suffix']).strip()}")
        else:
            fail(f"batch file: row {n} has no handle or suffix", USAGE_ERROR)
    return handles


def label_file_name(handle: str, kind: str) -> str:
    """A file name per handle, reversible with ``urllib.parse.unquote``."""
    return quote(handle, safe="") + "." + kind


def qr(
    handle: Annotated[str | None, typer.Argument(help="the handle (or hdl:/doi: form)")] = None,
    base_url: Annotated[str, typer.Option(help="the proxy's public URL")] = "",
    out_path: Annotated[
        Path | None, typer.Option("--out", help="file (one label) or directory (--batch)")
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="svg or png")] = None,
    scale: Annotated[int, typer.Option(help="pixels (PNG) or units (SVG) per module")] = 4,
    border: Annotated[int, typer.Option(help="quiet zone, in modules")] = 4,
    error: Annotated[str, typer.Option(help="error correction: L, M, Q or H")] = "M",
    batch: Annotated[Path | None, typer.Option(help="make a label per handle in FILE")] = None,
    prefix: Annotated[str | None, typer.Option(help="prefix of a batch's suffixes")] = None,
    symbol: Annotated[
        str, typer.Option(help="qr, or datamatrix (a GS1 Data Matrix for a GS1 key)")
    ] = "qr",
) -> None:
    """QR codes of a handle's proxy URL, or Data Matrix (docs/schemes.md, "QR labels")."""
    if not base_url.startswith(("http://", "https://")):
        fail("--base-url must be the proxy's http:// or https:// URL", USAGE_ERROR)
    if (handle is None) == (batch is None):
        fail("give a HANDLE or --batch FILE (one of them)", USAGE_ERROR)
    kind = fmt or (out_path.suffix.lstrip(".").lower() if out_path and not batch else "svg")
    options = LabelOptions(
        kind=kind, scale=scale, border=border, error=error.upper(), symbol=symbol.lower()
    )
    try:
        options.check()
    except IdnodeError as exc:
        fail(exc.message, USAGE_ERROR)
    if batch is None:
        assert handle is not None
        try:
            image = label(base_url, handle_from_path(handle), options)
        except IdnodeError as exc:
            fail(exc.message, USAGE_ERROR)
        if out_path is None:
            sys.stdout.buffer.write(image)
        else:
            out_path.write_bytes(image)
        return
    if out_path is None:
        fail("--batch needs --out DIR", USAGE_ERROR)
    try:
        text = batch.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {batch}: {exc}", USAGE_ERROR)
    handles = _handles_in(text, prefix)
    out_path.mkdir(parents=True, exist_ok=True)
    for name in handles:
        try:
            image = label(base_url, name, options)
        except IdnodeError as exc:
            fail(f"{name}: {exc.message}", USAGE_ERROR)
        (out_path / label_file_name(name, kind)).write_bytes(image)
    out.print(f"wrote {len(handles)} labels to {out_path}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``idnode qr`` to the CLI."""
    app.command("qr")(qr)


__all__ = ["FORMATS", "label_file_name", "register"]
