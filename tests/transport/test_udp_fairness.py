"""Issue 15, item 8: under a UDP flood from other addresses a light client is still answered.

Before the change the node answered whatever the kernel and its task limit let through, in
arrival order; a light client got a fraction of its answers (here about 92 %, in the issue
about 20 %). Now the UDP server reads into a per-source fair queue (``udp_fair``) and sheds
the heaviest sources first. ``bench/udp_fairness.py`` prints the same figure.

The mechanism is proved by the queue's own tests below, which do not depend on timing. The
end-to-end test shows it wired into a served node: under a flood from 32 addresses a light
client that retries as HANDLE.NET's resolver does (three tries, waiting 0.5, 1 and 1.5 s)
gets its answers, all but the odd one lost in the flood's first seconds (at most 1 %,
against 8 % before). It asserts no rate of first tries: that depends on how loaded the
machine is, and a test must not.
"""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

from idnode.app import open_node
from idnode.config import load_config
from idnode.runtime import system
from idnode.transport.udp import serve_udp
from idnode.transport.udp_fair import MIN_SHARE, FairQueue
from idnode.transport.wire_handler import WireHandler
from tests.conftest import RunningNode
from tests.transport.flood import HSJ_UDP_WAITS, Flood, light_client
from tests.transport.served import SMALL, seeded_node_dir, serve, stop

ASKED = 300


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> Iterator[RunningNode]:
    directory = seeded_node_dir(tmp_path_factory.mktemp("fair") / "node")
    # the flood comes from more addresses than the per-address rate limit holds back
    running = serve(directory, {"IDNODE_LIMITS_EXEMPT": "127.0.0.0/8"})
    yield running
    stop(running)


def test_a_light_client_keeps_its_answers_under_a_flood(node) -> None:
    target = (node.host, node.port)
    assert light_client(target, "127.0.1.1", SMALL, 3) == (3, 3)
    flood_from = [f"127.0.0.{i}" for i in range(2, 34)]
    with Flood(target, flood_from, SMALL + "-{n}", burst=4) as flood:  # store reads each
        # retrying as HANDLE.NET's resolver does: the flood's first seconds, when every one
        # of its names is new, can hold a light request past half a second
        answered, ok = light_client(target, "127.0.1.1", SMALL, ASKED, waits=HSJ_UDP_WAITS)
    assert flood.sent > 20 * ASKED  # it was a flood
    # before the fair queue about a fifth came back; now all but the odd one lost in the
    # flood's first, coldest seconds (on two cores shared with the flood)
    assert answered >= ASKED - 3 and ok == answered, (answered, ok, flood.sent)


def test_the_heaviest_source_is_shed_and_a_light_one_always_fits() -> None:
    queue = FairQueue(capacity=64)
    accepted = sum(queue.push("heavy", n) for n in range(1000))
    assert accepted == 64 and queue.dropped == 1000 - 64
    for n in range(10):  # newcomers push the heavy source's share down, and always fit
        assert queue.push(f"light-{n}", n)
    assert not queue.push("heavy", "more")
    assert len(queue) <= queue.hard_limit


def test_sources_are_served_in_turn() -> None:
    queue = FairQueue(capacity=1024)
    for n in range(100):
        queue.push("heavy", ("heavy", n))
    queue.push("light", ("light", 0))
    first = queue.take(2)
    assert [source for source, _ in first] == ["heavy", "light"]
    assert queue.take(1000)[0] == ("heavy", 1) and len(queue) == 0
    assert MIN_SHARE >= 1


def _backlogged_with_unread(node_template: Path, tmp_path: Path, datagrams: int) -> bool:
    """A served node's UDP protocol (fair queueing on, as ``idnode serve`` runs it) whose
    kernel holds ``datagrams`` unread requests: what ``_backlogged`` says of it. The loop
    never turns between the sends and the question, so nothing has been read."""
    directory = tmp_path / "node"
    shutil.copytree(node_template, directory)

    async def main() -> bool:
        node = await open_node(load_config(directory, env={}), runtime=system())
        transport, protocol = await serve_udp(WireHandler(node), "127.0.0.1", 0)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            assert protocol.fair is not None
            for _ in range(datagrams):
                client.sendto(b"x" * 100, transport.get_extra_info("sockname"))
            return protocol._backlogged()
        finally:
            client.close()
            transport.close()
            await node.close()

    return uvloop.run(main())


@pytest.mark.skipif(sys.platform != "linux", reason="SO_MEMINFO is Linux's")
def test_a_few_dozen_unread_datagrams_are_not_a_backlog(
    node_template: Path, tmp_path: Path
) -> None:
    """64 requests in flight from a busy client are no flood (about 53 KB unread): they
    are answered 32 a turn, not four (before, any unread datagram made the node answer four
    a turn: a system call and a turn of the loop for every four answers)."""
    assert _backlogged_with_unread(node_template, tmp_path, 64) is False


@pytest.mark.skipif(sys.platform != "linux", reason="SO_MEMINFO is Linux's")
def test_a_flood_is_a_backlog_long_before_the_buffer_fills(
    node_template: Path, tmp_path: Path
) -> None:
    """Hundreds of unread datagrams are a flood, though they fill a sliver of the 4 MiB
    buffer: the node then reads first, so that a light client's datagram soon reaches the
    fair queue and goes first there. (Judged by half the buffer, the light client waited
    behind thousands in the kernel's queue: three times as long, bench/udp_fairness.py.)"""
    assert _backlogged_with_unread(node_template, tmp_path, 400) is True
