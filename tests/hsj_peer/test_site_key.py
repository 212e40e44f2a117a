"""Issue 14.3: ``idnode get --verify`` can check answers against a HANDLE.NET site's key.

A HANDLE.NET server's HS_SITE carries its RSA key as HSJ writes it, with four trailing zero
bytes (``Util.getBytesFromPublicKey``); a site file (HSJ's ``siteinfo.bin``) with that key
must anchor the verification of signed answers.
"""

from __future__ import annotations

import asyncio
import json
import struct

from typer.testing import CliRunner

from idnode.cli import app
from idnode.wire.site import SiteInfo, encode_site
from tests.transport.conftest import PREFIX


def _field(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


def _java(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\0" + raw if raw[0] & 0x80 else raw


def handle_net_rsa_key(public_key) -> bytes:
    """HSJ's RSA_PUB_KEY: type, reserved flags, e, n, then its empty fourth field."""
    nums = public_key.public_numbers()
    return (
        _field(b"RSA_PUB_KEY") + b"\0\0" + _field(_java(nums.e)) + _field(_java(nums.n)) + bytes(4)
    )


async def test_get_verify_trusts_a_handle_net_site_key(wire_node, tmp_path):
    key = handle_net_rsa_key(wire_node.node.private_key.public_key())
    site = SiteInfo.for_single_server("127.0.0.1", wire_node.port, wire_node.port, public_key=key)
    path = tmp_path / "siteinfo.bin"
    path.write_bytes(encode_site(site))
    args = ["get", f"{PREFIX}/demo-1", "--server", f"127.0.0.1:{wire_node.port}"]
    for protocol in ("udp", "tcp"):
        result = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            [*args, "--protocol", protocol, "--verify", "--site", str(path), "--json"],
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["values"][0]["index"] == 1
