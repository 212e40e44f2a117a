"""QR labels for identifiers: the proxy URL of a handle as a QR code (SVG or PNG), made with
``segno`` (a maintained, dependency-free QR encoder).

A printed label is scanned by a phone, which opens the URL and lands on the proxy
(``transport/proxy.py``): a redirect to the product's page, or the page of its values. So
the code carries ``<base>/<handle>`` with the handle percent-encoded where a URL needs it
(``/`` kept), and nothing else. Options are those a label printer needs: the module
``scale`` (pixels per module in PNG, user units in SVG), the quiet-zone ``border`` in
modules, and the error-correction level (``L`` 7 %, ``M`` 15 %, ``Q`` 25 %, ``H`` 30 % of
the code may be damaged and still read).

A GS1 key (an identifier whose suffix is a Digital Link path, ``<prefix>/01/<GTIN>/10/<batch>``)
is printed on goods as a **GS1 Data Matrix**: the element string ``(01)...(10)...`` in
FNC1 mode, which every GS1 scanner decodes as AIs (symbology ``]d2``). ``symbol="datamatrix"``
makes that for a GS1 key and a plain Data Matrix of the proxy URL for any other handle. The
Data Matrix encoder is zxing-cpp's (ECC 200: its error correction is fixed, so ``error``
does not apply); the modules are drawn here, like segno's, with ``scale`` and ``border``.

``GET /qr/{handle}.svg`` / ``.png`` answers one code for the node's own proxy (the base URL
the request came in on), ``GET /datamatrix/{handle}.svg|png`` the Data Matrix; ``idnode qr``
(``cli_qr.py``) makes one or a whole import's worth.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from urllib.parse import quote

import orjson
import segno
import zxingcpp
from PIL import Image
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from idnode.codes import ResponseCode
from idnode.errors import IdnodeError, ProtocolError
from idnode.schemes.gs1 import GS1Scheme
from idnode.service.node import Node
from idnode.service.resolve import ResolutionQuery
from idnode.transport.proxy import handle_from_path

FORMATS = {"svg": "image/svg+xml", "png": "image/png"}
SYMBOLS = ("qr", "datamatrix")
ERROR_LEVELS = ("L", "M", "Q", "H")
MAX_SCALE = 64
MAX_BORDER = 16
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_INT = re.compile(r"[0-9]{1,3}")


@dataclass(frozen=True, slots=True)
class LabelOptions:
    """How a label looks; ``check`` refuses what no printer wants (``ProtocolError``)."""

    kind: str = "svg"
    scale: int = 4
    border: int = 4
    error: str = "M"
    symbol: str = "qr"

    def check(self) -> LabelOptions:
        if self.symbol not in SYMBOLS:
            raise ProtocolError(f"symbol must be one of {', '.join(SYMBOLS)}")
        if self.kind not in FORMATS:
            raise ProtocolError(f"format must be one of {', '.join(FORMATS)}")
        if not 1 <= self.scale <= MAX_SCALE:
            raise ProtocolError(f"scale must be from 1 to {MAX_SCALE}")
        if not 0 <= self.border <= MAX_BORDER:
            raise ProtocolError(f"border must be from 0 to {MAX_BORDER}")
        if self.error.upper() not in ERROR_LEVELS:
            raise ProtocolError(f"error correction must be one of {', '.join(ERROR_LEVELS)}")
        return self


def proxy_url(base: str, handle: str) -> str:
    """The URL a label carries: the proxy at ``base`` and the handle, escaped for a path."""
    if not handle or not handle.strip():
        raise ProtocolError("a label needs a handle")
    return base.rstrip("/") + "/" + quote(handle, safe=_PATH_SAFE)


def qr_code(url: str, options: LabelOptions) -> bytes:
    """``url`` as a QR code in ``options.kind``; the level is the least the code may have
    (segno's ``boost_error`` off: a label printed at H stays H and no better)."""
    options.check()
    code = segno.make_qr(url, error=options.error.lower(), boost_error=False)
    out = io.BytesIO()
    code.save(out, kind=options.kind, scale=options.scale, border=options.border)
    return out.getvalue()


def gs1_element_string(handle: str) -> str | None:
    """The GS1 element string of a GS1 key's identifier (``88.123/01/09506000134352/10/ABC``
    gives ``(01)09506000134352(10)ABC``), validated, check digit included; None when the
    suffix is not a Digital Link path (the prefix before it is whatever homes the key)."""
    prefix = handle.partition("/")[0]
    link = GS1Scheme(prefix).link_of(handle) if prefix else None
    if link is None:
        return None
    return "".join(f"({ai}){value}" for ai, value in ((link.key, link.value), *link.qualifiers))


def _modules(content: str, gs1: bool) -> tuple[int, int, bytes]:
    """Width, height and one byte per module (0 dark) of the Data Matrix of ``content``."""
    try:
        code = zxingcpp.create_barcode(content, zxingcpp.BarcodeFormat.DataMatrix, gs1=gs1)
    except (ValueError, RuntimeError) as exc:  # too long for the largest symbol
        raise ProtocolError(f"cannot make a Data Matrix of {content!r}: {exc}") from exc
    image = memoryview(code.to_image(scale=1, add_quiet_zones=False))
    height, width = image.shape
    return width, height, image.tobytes()


def _svg(width: int, height: int, dark: bytes, options: LabelOptions) -> bytes:
    """The modules as one SVG path of horizontal runs, in units of ``scale``."""
    s, b = options.scale, options.border
    runs = []
    for y in range(height):
        row = dark[y * width : (y + 1) * width]
        x = 0
        while x < width:
            if row[x] == 0:
                end = x
                while end < width and row[end] == 0:
                    end += 1
                runs.append(f"M{(x + b) * s} {(y + b) * s}h{(end - x) * s}v{s}h-{(end - x) * s}z")
                x = end
            else:
                x += 1
    w, h = (width + 2 * b) * s, (height + 2 * b) * s
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
        f'width="{w}" height="{h}" viewBox="0 0 {w} {h}"><rect width="{w}" height="{h}" '
        f'fill="#fff"/><path fill="#000" d="{"".join(runs)}"/></svg>\n'
    ).encode()


def data_matrix(content: str, options: LabelOptions, gs1: bool = False) -> bytes:
    """``content`` as a Data Matrix in ``options.kind``; ``gs1`` for an element string, which
    is then encoded in FNC1 mode (a GS1 Data Matrix)."""
    options.check()
    width, height, dark = _modules(content, gs1)
    if options.kind == "svg":
        return _svg(width, height, dark, options)
    s, b = options.scale, options.border
    image = Image.new("L", (width + 2 * b, height + 2 * b), 255)
    image.paste(Image.frombytes("L", (width, height), dark), (b, b))
    out = io.BytesIO()
    image.resize((image.width * s, image.height * s), Image.Resampling.NEAREST).save(out, "PNG")
    return out.getvalue()


def label(base: str, handle: str, options: LabelOptions) -> bytes:
    """The label of ``handle`` for the proxy at ``base``: a QR code of its URL, or with
    ``symbol="datamatrix"`` a GS1 Data Matrix of a GS1 key (else a Data Matrix of the URL)."""
    if options.symbol == "datamatrix":
        element_string = gs1_element_string(handle)
        if element_string is not None:
            return data_matrix(element_string, options, gs1=True)
        return data_matrix(proxy_url(base, handle), options)
    return qr_code(proxy_url(base, handle), options)


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _INT.fullmatch(raw.strip()):
        raise ProtocolError(f"{name} must be a small whole number")
    return int(raw)


def qr_routes(node: Node) -> list[BaseRoute]:
    """``GET /qr/{handle}.svg|png?scale=&border=&error=`` and ``GET /datamatrix/...``: 404
    for a handle the node does not know (a label for a typo helps nobody), JSON errors as the
    REST API writes them."""

    def refuse(handle: str | None, code: int, message: str, status: int) -> Response:
        body: dict[str, object] = {"responseCode": int(code)}
        if handle is not None:
            body["handle"] = handle
        body["message"] = message
        return Response(orjson.dumps(body), status, media_type="application/json")

    async def answer(request: Request, symbol: str) -> Response:
        path = request.path_params["handle"]
        name, dot, ext = path.rpartition(".")
        handle = handle_from_path(name) if dot else ""
        route = "qr" if symbol == "qr" else symbol
        try:
            if ext.lower() not in FORMATS or not handle:
                raise ProtocolError(f"ask /{route}/{{handle}}.svg or /{route}/{{handle}}.png")
            options = LabelOptions(
                kind=ext.lower(),
                scale=_int(request, "scale", 4),
                border=_int(request, "border", 4 if symbol == "qr" else 1),
                error=request.query_params.get("error", "M"),
                symbol=symbol,
            ).check()
            query = ResolutionQuery(handle=handle, public_only=True, types=("HS_ADMIN",))
            try:
                await node.resolver.resolve(query)
            except IdnodeError as exc:
                if exc.code != ResponseCode.VALUES_NOT_FOUND:
                    raise
            image = label(str(request.base_url), handle, options)
        except IdnodeError as exc:
            status = 404 if exc.code == ResponseCode.HANDLE_NOT_FOUND else 400
            return refuse(handle or None, exc.code, exc.message, status)
        return Response(image, media_type=FORMATS[options.kind])

    async def qr(request: Request) -> Response:
        return await answer(request, "qr")

    async def datamatrix(request: Request) -> Response:
        return await answer(request, "datamatrix")

    return [
        Route("/qr/{handle:path}", qr, methods=["GET"]),
        Route("/datamatrix/{handle:path}", datamatrix, methods=["GET"]),
    ]


__all__ = [
    "SYMBOLS",
    "LabelOptions",
    "data_matrix",
    "gs1_element_string",
    "label",
    "proxy_url",
    "qr_code",
    "qr_routes",
]
