"""One real node, its fixtures written straight to it, and the faulty proxy in front of it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from idnode import runtime
from idnode.auth.identity import Identity
from idnode.crypto.keys import load_private_key_pem
from idnode.verify.conformance import fixtures
from idnode.verify.conformance.context import Context, Credentials, Fixtures
from idnode.verify.conformance.probes import Probe
from tests.conftest import RunningNode, start_node, stop_node

from .faulty import FaultyServer

PREFIX = "20.500.123"


@dataclass
class Env:
    node: RunningNode
    creds: Credentials
    fixtures: Fixtures
    proxy: FaultyServer

    @property
    def key_path(self):
        return self.node.directory / "admin_privkey.pem"


@pytest.fixture(scope="package")
def env(tmp_path_factory) -> Iterator[Env]:
    node = start_node(tmp_path_factory.mktemp("verify-node"), prefix=PREFIX)
    try:
        key = load_private_key_pem((node.directory / "admin_privkey.pem").read_bytes())
        creds = Credentials(Identity("0.NA/" + PREFIX, 300), private_key=key)
        rt = runtime.system()  # the fixtures go to a real node, timed on the real clock
        addr = (node.host, node.port)
        probe = Probe(addr, addr, node.http_url, 3.0, clock=rt.clock)
        ctx = Context(probe, PREFIX, None, creds, clock=rt.clock, random=rt.random)
        fx = asyncio.run(fixtures.setup(ctx))
        proxy = FaultyServer(node.host, node.port, node.http_url).start()
        try:
            yield Env(node, creds, fx, proxy)
        finally:
            proxy.stop()
    finally:
        stop_node(node)
