"""A log-linear latency histogram (the HDR histogram idea) with mergeable integer counts.

Why not the ``hdrhistogram`` package: it installs on Python 3.11, but it pulls ``pbr`` and
``setuptools`` in as run-time dependencies and its ``record_value`` costs about 1.2 µs in
pure Python, which a load generator pays on every answer. This one is a list index away.

Layout: values (nanoseconds, non-negative ints) below ``2**SUB_BITS`` get one bucket each
(exact); above, each power-of-two range is cut into ``2**(SUB_BITS-1)`` equal buckets, so a
recorded value is known to within 1 part in ``2**(SUB_BITS-1)`` (0.1 % with the default 11
bits: three significant digits, like ``HdrHistogram(..., 3)``). Bucket index of ``v``::

    shift = max(0, v.bit_length() - SUB_BITS)
    index = (shift << (SUB_BITS - 1)) + (v >> shift)

Percentiles follow HdrHistogram: the smallest bucket whose cumulative count reaches
``ceil-ish(p/100 * total)``, reported as the highest value equivalent to that bucket (an
upper bound, never optimistic), capped at the largest value actually recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

SUB_BITS = 11
HALF = 1 << (SUB_BITS - 1)
MAX_BITS = 44  # 2**44 ns is about 4.9 hours: anything longer is clamped


def bucket_index(value: int) -> int:
    """The bucket of ``value`` (see the module docstring)."""
    shift = value.bit_length() - SUB_BITS
    if shift <= 0:
        return value
    return (shift << (SUB_BITS - 1)) + (value >> shift)


def bucket_range(index: int) -> tuple[int, int]:
    """The lowest and highest value that land in bucket ``index``."""
    if index < (1 << SUB_BITS):
        return index, index
    shift = (index >> (SUB_BITS - 1)) - 1
    top = index - (shift << (SUB_BITS - 1))
    low = top << shift
    return low, low + (1 << shift) - 1


_SIZE = bucket_index((1 << MAX_BITS) - 1) + 1
_MAX_VALUE = (1 << MAX_BITS) - 1


class Histogram:
    """Counts of nanosecond values. ``record`` is the hot path; everything else is reporting.

    Mergeable (``merge``) and serialisable (``to_dict``/``from_dict``) so that client
    processes can each keep their own and the parent adds them up exactly.
    """

    __slots__ = ("counts", "total", "min", "max", "sum")

    def __init__(self) -> None:
        self.counts: list[int] = [0] * _SIZE
        self.total = 0
        self.min = 0
        self.max = 0
        self.sum = 0

    def record(self, value: int, count: int = 1) -> None:
        """Add ``count`` samples of ``value`` ns (negative is 0, huge is clamped)."""
        if value < 0:
            value = 0
        elif value > _MAX_VALUE:
            value = _MAX_VALUE
        shift = value.bit_length() - SUB_BITS
        index = value if shift <= 0 else (shift << (SUB_BITS - 1)) + (value >> shift)
        self.counts[index] += count
        if self.total == 0 or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.total += count
        self.sum += value * count

    def merge(self, other: Histogram) -> Histogram:
        """Add ``other``'s samples into this one; returns self."""
        if other.total == 0:
            return self
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += c
        self.min = other.min if self.total == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.total += other.total
        self.sum += other.sum
        return self

    @property
    def mean(self) -> float:
        return self.sum / self.total if self.total else 0.0

    def percentile(self, p: float) -> int:
        """The value at percentile ``p`` (0..100); 0 for an empty histogram."""
        if self.total == 0:
            return 0
        if p >= 100:
            return self.max
        wanted = max(1, int(p / 100 * self.total + 0.5))
        seen = 0
        for index, c in enumerate(self.counts):
            if c:
                seen += c
                if seen >= wanted:
                    return min(bucket_range(index)[1], self.max)
        return self.max

    def percentiles(self, ps: Iterable[float]) -> dict[float, int]:
        return {p: self.percentile(p) for p in ps}

    def buckets(self) -> Iterator[tuple[int, int, int]]:
        """(low, high, count) of every non-empty bucket, in value order."""
        for index, c in enumerate(self.counts):
            if c:
                low, high = bucket_range(index)
                yield low, high, c

    def percentile_curve(self, points_per_decade: int = 8) -> list[tuple[float, int]]:
        """(percentile, value) points spaced evenly in log(1/(1-p)), the HdrHistogram plot
        axis, from 0 up to the last sample; for the report's latency distribution plot."""
        out: list[tuple[float, int]] = []
        if self.total == 0:
            return out
        decades = 0
        while 10**decades < self.total and decades < 7:
            decades += 1
        steps = decades * points_per_decade
        for i in range(steps + 1):
            tail = 10 ** (-i / points_per_decade)
            p = 100 * (1 - tail)
            out.append((p, self.percentile(p)))
        out.append((100.0, self.max))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Sparse JSON form: {"sub_bits", "counts": {index: count}, total, min, max, sum}."""
        return {
            "sub_bits": SUB_BITS,
            "counts": {str(i): c for i, c in enumerate(self.counts) if c},
            "total": self.total,
            "min": self.min,
            "max": self.max,
            "sum": self.sum,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        if data.get("sub_bits", SUB_BITS) != SUB_BITS:
            raise ValueError(f"histogram with sub_bits={data['sub_bits']}, expected {SUB_BITS}")
        h = cls()
        for i, c in data["counts"].items():
            h.counts[int(i)] = int(c)
        h.total, h.min, h.max, h.sum = data["total"], data["min"], data["max"], data["sum"]
        return h
