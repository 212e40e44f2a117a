"""UDP answers leave in batches (``transport/udp_batch.py``): one ``sendmmsg`` a turn.

Real sockets on 127.0.0.1 (and ::1 where the machine has it), on both event loops the node
runs on (asyncio's and uvloop's): every datagram arrives whole, in order, to its own
address, in fewer system calls than datagrams; a datagram the kernel refuses costs only
itself; without batching everything goes through the transport as before.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from idnode.app import open_node
from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.config import load_config
from idnode.runtime import system
from idnode.transport.udp import serve_udp
from idnode.transport.udp_batch import _SENDMMSG, BATCH, DatagramBatcher
from idnode.transport.wire_handler import WireHandler
from idnode.wire import bodies
from idnode.wire.envelope import Envelope
from idnode.wire.header import Header
from idnode.wire.message import Message, decode_message_bytes, encode_message
from tests.transport.conftest import PREFIX

LOOPS: dict[str, Callable[[Coroutine[Any, Any, Any]], Any]] = {
    "asyncio": asyncio.run,
    "uvloop": uvloop.run,
}
needs_sendmmsg = pytest.mark.skipif(_SENDMMSG is None, reason="no sendmmsg on this platform")


def _receiver(family: int = socket.AF_INET, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(10)
    return sock


def _received(sock: socket.socket, count: int) -> list[bytes]:
    return [sock.recv(2048) for _ in range(count)]


async def _batcher(family: int = socket.AF_INET, host: str = "127.0.0.1", **kw):
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=(host, 0), family=family
    )
    return transport, DatagramBatcher(transport, loop, **kw)


@needs_sendmmsg
@pytest.mark.parametrize("loop", LOOPS)
def test_a_batch_arrives_whole_in_order_in_fewer_system_calls(loop: str) -> None:
    first, second = _receiver(), _receiver()
    datagrams = [bytes([n % 251]) * (1 + n * 5 % 500) for n in range(100)]

    async def main() -> DatagramBatcher:
        transport, out = await _batcher()
        for n, datagram in enumerate(datagrams):
            out.send(datagram, (first if n % 2 else second).getsockname())
        out.flush()
        transport.close()
        return out

    out = LOOPS[loop](main())
    assert out.batched
    assert _received(first, 50) == datagrams[1::2]
    assert _received(second, 50) == datagrams[0::2]
    assert out.sent_batched == 100
    assert out.system_calls == -(-100 // BATCH)  # 64 a call: two calls, not a hundred


@needs_sendmmsg
@pytest.mark.parametrize("loop", LOOPS)
def test_what_is_sent_in_a_turn_leaves_at_its_end_without_a_flush(loop: str) -> None:
    receiver = _receiver()

    async def main() -> DatagramBatcher:
        transport, out = await _batcher()
        for n in range(10):
            out.send(b"turn %d" % n, receiver.getsockname())
        await asyncio.sleep(0)  # the loop's next callbacks: the batch's flush among them
        await asyncio.sleep(0)
        transport.close()
        return out

    out = LOOPS[loop](main())
    assert _received(receiver, 10) == [b"turn %d" % n for n in range(10)]
    assert (out.system_calls, out.sent_batched) == (1, 10)


@needs_sendmmsg
def test_ipv6_clients_are_answered_in_batches_too() -> None:
    try:
        receiver = _receiver(socket.AF_INET6, "::1")
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")

    async def main() -> DatagramBatcher:
        transport, out = await _batcher(socket.AF_INET6, "::1")
        for n in range(5):
            out.send(b"six %d" % n, receiver.getsockname())
        out.flush()
        transport.close()
        return out

    out = uvloop.run(main())
    assert _received(receiver, 5) == [b"six %d" % n for n in range(5)]
    assert (out.system_calls, out.sent_batched) == (1, 5)


@needs_sendmmsg
@pytest.mark.parametrize("loop", LOOPS)
def test_a_datagram_the_kernel_refuses_costs_only_itself(loop: str) -> None:
    receiver = _receiver()
    refused = ("127.0.0.1", 0)  # port 0: EINVAL from the kernel

    async def main() -> DatagramBatcher:
        transport, out = await _batcher()
        for n in range(6):
            out.send(b"before %d" % n, receiver.getsockname())
        out.send(b"nobody", refused)
        for n in range(6):
            out.send(b"after %d" % n, receiver.getsockname())
        out.flush()  # (the transport reports the refusal to its protocol, which ignores it)
        transport.close()
        return out

    out = LOOPS[loop](main())
    got = _received(receiver, 12)
    assert got == [b"before %d" % n for n in range(6)] + [b"after %d" % n for n in range(6)]
    # six in the first call; the second refused at once, the transport took the rest
    assert (out.system_calls, out.sent_batched) == (2, 6)


@pytest.mark.parametrize("loop", LOOPS)
def test_without_batching_every_datagram_goes_through_the_transport(loop: str) -> None:
    receiver = _receiver()

    async def main() -> DatagramBatcher:
        transport, out = await _batcher(batched=False)
        for n in range(10):
            out.send(b"one %d" % n, receiver.getsockname())
        out.flush()
        transport.close()
        return out

    out = LOOPS[loop](main())
    assert not out.batched
    assert _received(receiver, 10) == [b"one %d" % n for n in range(10)]
    assert (out.system_calls, out.sent_batched) == (0, 0)


def _burst(node_template: Path, tmp_path: Path, count: int) -> tuple[list[bytes], Any]:
    """``count`` resolutions sent to a served node before its loop reads any (so it reads
    them in one turn, up to uvloop's 32), on uvloop as ``idnode serve`` runs: the answers
    and the protocol's batcher."""
    directory = tmp_path / "node"
    shutil.copytree(node_template, directory)
    requests = [
        encode_message(
            Message(
                Header(opcode=OpCode.RESOLUTION, flags=OpFlag.PO),  # public values
                bodies.ResolutionRequest(f"{PREFIX}/demo-1"),
                Envelope(request_id=n),
            )
        )
        for n in range(1, count + 1)
    ]

    async def main() -> tuple[list[bytes], DatagramBatcher]:
        node = await open_node(load_config(directory, env={}), runtime=system())
        transport, protocol = await serve_udp(WireHandler(node), "127.0.0.1", 0)
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.bind(("127.0.0.1", 0))
        client.setblocking(False)
        try:
            for request in requests:
                client.sendto(request, transport.get_extra_info("sockname"))
            loop = asyncio.get_running_loop()
            return [
                await asyncio.wait_for(loop.sock_recv(client, 2048), 10) for _ in requests
            ], protocol.out
        finally:
            client.close()
            transport.close()
            await node.close()

    answers, out = uvloop.run(main())
    messages = [decode_message_bytes(a) for a in answers]
    assert sorted(m.envelope.request_id for m in messages) == list(range(1, count + 1))
    assert {m.header.response_code for m in messages} == {ResponseCode.SUCCESS}
    return answers, out


@needs_sendmmsg
def test_the_node_answers_a_burst_in_fewer_system_calls_than_answers(
    node_template: Path, tmp_path: Path
) -> None:
    """32 resolutions read in one turn: 32 answers (the store path's), in batches. On
    uvloop, as ``idnode serve`` runs: asyncio's own loop reads one datagram a turn."""
    _, out = _burst(node_template, tmp_path, 32)
    assert out.sent_batched == 32
    assert out.system_calls < 32


@needs_sendmmsg
def test_what_the_node_reads_in_a_turn_it_answers_in_one_system_call(
    node_template: Path, tmp_path: Path
) -> None:
    """The 32 datagrams uvloop reads in a turn are answered in one batch from the fair
    queue, and so in one ``sendmmsg`` that wakes the client once (answered 16 a batch
    before, two calls: 10 % of the UDP paths' throughput, docs/performance.md)."""
    _, out = _burst(node_template, tmp_path, 32)
    assert (out.sent_batched, out.system_calls) == (32, 1)
