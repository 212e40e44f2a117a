"""The histogram against exact inputs: percentiles, bucket bounds, merging, round trips."""

from __future__ import annotations

import random

import pytest

from idnode.verify.histogram import SUB_BITS, Histogram, bucket_index, bucket_range


def filled(values) -> Histogram:
    h = Histogram()
    for v in values:
        h.record(v)
    return h


def test_small_values_are_exact():
    h = filled(range(1, 1001))  # 1..1000, all below 2**SUB_BITS: one bucket per value
    assert h.total == 1000
    assert h.percentile(50) == 500
    assert h.percentile(90) == 900
    assert h.percentile(99) == 990
    assert h.percentile(99.9) == 999
    assert h.percentile(100) == 1000
    assert h.min == 1 and h.max == 1000
    assert h.mean == pytest.approx(500.5)


def test_percentiles_match_sorted_samples_within_resolution():
    rng = random.Random(7)
    values = [int(rng.lognormvariate(13, 1.2)) for _ in range(20_000)]  # ~0.4 ms, long tail
    h = filled(values)
    ordered = sorted(values)
    for p in (50, 90, 99, 99.9):
        exact = ordered[max(1, int(p / 100 * len(values) + 0.5)) - 1]
        got = h.percentile(p)
        assert exact <= got <= exact * (1 + 2 ** -(SUB_BITS - 1)), p
    assert h.percentile(100) == max(values)


def test_bucket_ranges_tile_the_values():
    for v in [0, 1, 2047, 2048, 2049, 4095, 4096, 10**6, 123_456_789, 2**40 + 5]:
        low, high = bucket_range(bucket_index(v))
        assert low <= v <= high
        assert high - low <= max(0, v >> (SUB_BITS - 1))  # relative width <= 1/1024
    # consecutive buckets are adjacent: no value falls between two
    for i in range(2040, 2100):
        assert bucket_range(i)[1] + 1 == bucket_range(i + 1)[0]


def test_percentile_is_an_upper_bound_capped_at_max():
    h = filled([1_000_003])  # in a bucket 512 ns wide
    assert h.percentile(50) == 1_000_003
    h.record(3_000_000)
    assert h.percentile(50) >= 1_000_003


def test_merge_equals_recording_everything_in_one():
    a, b = filled(range(0, 5000, 3)), filled(range(10**6, 2 * 10**6, 997))
    both = filled([*range(0, 5000, 3), *range(10**6, 2 * 10**6, 997)])
    merged = Histogram().merge(a).merge(b)
    assert merged.counts == both.counts
    assert (merged.total, merged.min, merged.max, merged.sum) == (
        both.total,
        both.min,
        both.max,
        both.sum,
    )
    assert Histogram.from_dict(merged.to_dict()).counts == both.counts


def test_empty_and_clamped():
    h = Histogram()
    assert h.percentile(99) == 0 and h.percentile_curve() == []
    h.record(-5)
    h.record(10**20)
    assert h.min == 0 and h.total == 2


def test_percentile_curve_is_monotonic_and_ends_at_max():
    h = filled(range(1, 10_001))
    curve = h.percentile_curve()
    assert curve[0][0] == 0 and curve[-1] == (100.0, 10_000)
    values = [v for _, v in curve]
    assert values == sorted(values)
