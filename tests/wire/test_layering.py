"""The import layering issue 13 set: ``crypto`` and the byte codec (``idnode.encoding``) sit
below ``wire``; ``wire`` may import ``crypto`` (HS_PUBKEY), never the reverse."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["idnode.crypto", "idnode.crypto.keys", "idnode.encoding"])
def test_core_modules_load_without_wire(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "print(sorted(m for m in sys.modules if m.startswith(('idnode.wire', 'idnode.transport'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_old_homes_are_gone() -> None:
    """One codec and one type table: the modules they replaced must not come back."""
    for gone in ("idnode.wire.codec", "idnode.wire.handlevalues", "idnode.transport.json_values"):
        with pytest.raises(ModuleNotFoundError):
            __import__(gone)
