"""The browser assets the node serves itself at ``/assets/vendor/...``: Swagger UI, htmx,
ECharts, never from a CDN (a node on a plant's network often has no Internet).

They come from the npm registry at install time (``make vendor``: pinned versions in
``vendor.lock``, one file each, into ``src/idnode/static/vendor``), not from the
repository; ``missing`` names what an install left out, so a page can say so rather than
render blank.
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

VENDOR = Path(__file__).resolve().parent.parent / "static" / "vendor"
URL = "/assets/vendor"


def missing(*names: str) -> list[str]:
    """Which of ``names`` are not in the vendor folder."""
    return [name for name in names if not (VENDOR / name).is_file()]


def asset_routes() -> list[Mount]:
    """``/assets/vendor/{name}``: the vendored files (StaticFiles refuses paths outside)."""
    return [Mount(URL, app=StaticFiles(directory=VENDOR, check_dir=False), name="vendor")]


__all__ = ["URL", "VENDOR", "asset_routes", "missing"]
