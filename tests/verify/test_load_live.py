"""Bounded runs against a real ``idnode serve`` over UDP, TCP and HTTP; counts must add up."""

from __future__ import annotations

from pathlib import Path

import pytest

from idnode import runtime
from idnode.verify.engine import CLOSED, RATE, LoadSpec
from idnode.verify.results import CODE, CONNECT, ERROR_KINDS, TIMEOUT
from idnode.verify.runner import run
from idnode.verify.workload import HIT, KINDS, MISS, TYPED, KeySet, parse_mix
from tests.conftest import free_port, start_node, stop_node

MIX = parse_mix("hit=60,miss=25,typed=15")
CLOCK = runtime.system().clock  # latencies and timeouts against a real socket: real time


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    node = start_node(tmp_path_factory.mktemp("bench-node"))  # demo-1..3 with URL values
    yield node
    stop_node(node)


@pytest.fixture(scope="module")
def keys(node, tmp_path_factory) -> KeySet:
    path: Path = tmp_path_factory.mktemp("keys") / "keys.txt"
    path.write_text("".join(f"{node.prefix}/demo-{i}\n" for i in (1, 2, 3)))
    return KeySet.from_file(path)


def spec_for(node, keys, protocol: str, **kw) -> LoadSpec:
    port = node.http_port if protocol == "http" else node.port
    base = dict(keys=keys, mix=MIX, clock=CLOCK, duration=2.0, timeout=1.0, concurrency=8)
    return LoadSpec(protocol=protocol, host="127.0.0.1", port=port, **{**base, **kw})


def assert_adds_up(r) -> None:
    assert r.total_sent == r.total_ok + r.total_errors
    assert r.latency.total == r.total_ok
    assert sum(r.timeline_ok) == r.total_ok and sum(r.timeline_errors) == r.total_errors


@pytest.mark.parametrize("protocol", ["udp", "tcp", "http"])
def test_closed_loop_counts_add_up(node, keys, protocol):
    r = run(spec_for(node, keys, protocol, requests=300), processes=1)
    assert_adds_up(r)
    assert r.total_sent == 300
    assert r.errors == dict.fromkeys(ERROR_KINDS, 0), r.samples
    # every hit found, every miss answered 100, every typed query only URL values
    assert r.ok == r.sent
    assert all(r.sent[k] > 0 for k in KINDS)
    assert 0 < r.latency.percentile(50) <= r.latency.percentile(99) <= r.latency.max


@pytest.mark.parametrize("protocol", ["udp", "http"])
def test_typed_query_for_an_absent_type_is_an_error(node, keys, protocol):
    spec = spec_for(
        node, keys, protocol, requests=20, mix=parse_mix("typed=1"), typed_type="NO_SUCH_TYPE"
    )
    r = run(spec, processes=1)
    assert_adds_up(r)
    assert r.errors[CODE] == 20 and r.total_ok == 0  # VALUES_NOT_FOUND, not SUCCESS


def test_several_processes_merge(node, keys):
    r = run(spec_for(node, keys, "udp", requests=401), processes=2)
    assert_adds_up(r)
    assert r.total_sent == r.total_ok == 401
    assert r.sent[HIT] + r.sent[MISS] + r.sent[TYPED] == 401


def test_fixed_rate_sends_the_target_count(node, keys):
    r = run(spec_for(node, keys, "tcp", mode=RATE, rate=200, duration=1.0), processes=1)
    assert_adds_up(r)
    assert 195 <= r.total_sent <= 200
    assert r.total_ok == r.total_sent
    # latency from the intended send time is never below the send-to-answer time
    assert r.latency.percentile(99) >= r.service.percentile(99) > 0


def test_silence_counts_as_timeouts():
    keys = KeySet.generated("20.500.1", 10)
    spec = LoadSpec(
        protocol="udp",
        host="127.0.0.1",
        port=free_port(),
        keys=keys,
        mix=MIX,
        clock=CLOCK,
        mode=CLOSED,
        concurrency=5,
        requests=5,
        timeout=0.3,
    )
    r = run(spec, processes=1)
    assert r.errors[TIMEOUT] == 5 and r.total_ok == 0


def test_refused_connections_count_as_connect_errors():
    keys = KeySet.generated("20.500.1", 10)
    spec = LoadSpec(
        protocol="http",
        host="127.0.0.1",
        port=free_port(),
        keys=keys,
        mix=MIX,
        clock=CLOCK,
        concurrency=2,
        requests=6,
        timeout=0.5,
    )
    r = run(spec, processes=1)
    assert_adds_up(r)
    assert r.errors[CONNECT] == 6 and r.total_ok == 0
