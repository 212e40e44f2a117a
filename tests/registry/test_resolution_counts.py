"""Issue 15, item 6: one client cannot inflate an enterprise's resolution statistics.

Before the change every resolution counted, so a client asking for the same identifier in
a loop multiplied the enterprise's figures. Now a resolution counts once per client
address and identifier within ``states.COUNT_WINDOW`` seconds (docs/governance.md).
"""

from __future__ import annotations

from idnode.model import URL, HandleValue
from idnode.registry.states import COUNT_WINDOW
from idnode.service.resolve import ResolutionQuery

HANDLE = "88.123.4567/P1"


async def _resolve(env, client: str, times: int = 1) -> None:
    for _ in range(times):
        await env.node.resolver.resolve(ResolutionQuery(handle=HANDLE, client=client))


async def test_one_client_repeating_a_resolution_counts_once_per_window(env) -> None:
    await env.allocated()
    await env.node.store.create_handle(HANDLE, [HandleValue(1, URL, b"https://e.com/")])
    gate = env.reg.gate
    gate.take()
    await _resolve(env, "192.0.2.7", times=500)
    assert gate.take() == {"88.123.4567": 1}
    await _resolve(env, "192.0.2.7", times=10)
    await _resolve(env, "198.51.100.9", times=10)  # another client counts for itself
    assert gate.take() == {"88.123.4567": 1}
    env.clock.advance(COUNT_WINDOW + 1)  # a new window: the same client counts again
    await _resolve(env, "192.0.2.7", times=10)
    assert gate.take() == {"88.123.4567": 1}


async def test_the_remembered_pairs_are_bounded(env) -> None:
    gate = env.reg.gate
    for i in range(gate.memory + 100):
        gate(HANDLE, f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}")
    assert len(gate._seen) <= gate.memory


async def test_each_pair_counts_again_when_its_own_window_ends(env) -> None:
    """Windows that started at different times end at different times (the gate forgets
    its pairs oldest first, looking only when the oldest window may have ended)."""
    gate = env.reg.gate
    gate.take()
    gate(HANDLE, "192.0.2.1")
    env.clock.advance(COUNT_WINDOW / 2)
    gate(HANDLE, "192.0.2.2")
    gate(HANDLE, "192.0.2.1")  # within its window
    assert gate.take() == {"88.123.4567": 2}
    env.clock.advance(COUNT_WINDOW / 2 + 1)  # the first pair's window has ended, not the second's
    gate(HANDLE, "192.0.2.1")
    gate(HANDLE, "192.0.2.2")
    assert gate.take() == {"88.123.4567": 1}
    env.clock.advance(COUNT_WINDOW / 2)
    gate(HANDLE, "192.0.2.2")
    gate(HANDLE, "192.0.2.1")  # counted anew a half window ago: still within
    assert gate.take() == {"88.123.4567": 1}
    assert len(gate._seen) == 2
