"""Registrations folded from the transaction log, the same on every engine."""

from __future__ import annotations

import time

from idnode.model import HandleValue


async def test_counts_per_day_and_prefix_with_a_cursor(store, clock):
    v = [HandleValue(1, "URL", b"x")]
    await store.create_handle("20.500.1/a", v)
    await store.load([("20.500.1/b", v), ("20.500.2/c", v)])
    await store.add_values("20.500.1/a", [HandleValue(2, "URL", b"y")])  # not a creation
    await store.home_prefix("20.500.9")  # no slash: not an identifier
    counts, last = await store.creation_counts(0)
    assert last == await store.serial()
    day = time.strftime("%Y-%m-%d", time.gmtime(clock()))
    assert sorted(counts) == [(day, "20.500.1", 2), (day, "20.500.2", 1)]
    # a cursor past everything reads nothing; a limit stops early
    assert await store.creation_counts(last) == ([], last)
    first, upto = await store.creation_counts(0, limit=1)
    assert upto == 1 and first == [(day, "20.500.1", 1)]
