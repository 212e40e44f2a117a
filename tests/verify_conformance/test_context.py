"""The suite's context draws its run id and request ids from the caller's random source, so
a run replays exactly under a seeded one."""

from __future__ import annotations

from idnode import runtime
from idnode.verify.conformance.context import Context
from idnode.verify.conformance.probes import Probe


def context(seed: int) -> Context:
    rt = runtime.fixed(seed=seed)
    probe = Probe(None, None, None, clock=rt.clock)
    return Context(probe, "20.500.1", clock=rt.clock, random=rt.random)


def test_a_seed_fixes_the_run_id_and_the_request_ids():
    a, b = context(7), context(7)
    assert a.run_id == b.run_id and len(a.run_id) == 8
    ids = [a.resolution("0.NA/20.500.1").envelope.request_id for _ in range(3)]
    assert ids == [b.resolution("0.NA/20.500.1").envelope.request_id for _ in range(3)]
    assert all(0 <= i < 1 << 31 for i in ids)
    assert context(8).run_id != a.run_id
    assert a.new_name("rec") == f"20.500.1/idnode-verify-{a.run_id}-rec"
