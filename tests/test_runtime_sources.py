"""Time and randomness come from one place (``idnode.runtime``), passed down by the caller.

A module that reads the machine's clock or entropy on its own makes its tests depend on
today's date or on luck (issue 12: the monthly statistics broke on 1 December because the
store stamped its log with the real clock while the registry ran on the test's). This test
reads every module under ``src/`` and names each place that reaches for a source itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from idnode import runtime

SRC = Path(__file__).resolve().parent.parent / "src" / "idnode"
THE_ONE_PLACE = SRC / "runtime.py"

# module -> attributes that read a clock or an entropy source
FORBIDDEN_ATTRIBUTES = {
    "time": {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"},
    "os": {"urandom", "getrandom"},
    "uuid": {"uuid1", "uuid4"},
    "datetime": {"now", "utcnow", "today"},
    "date": {"today"},
    "random": {
        "random",
        "randint",
        "randrange",
        "randbytes",
        "getrandbits",
        "choice",
        "choices",
        "shuffle",
        "sample",
        "uniform",
        "SystemRandom",
    },  # fmt: skip
}
FORBIDDEN_MODULES = {"secrets"}  # every function of it draws entropy


def reaches(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, f"import {a.name}") for a in node.names
                      if a.name in FORBIDDEN_MODULES]  # fmt: skip
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module in FORBIDDEN_MODULES:
                found.append((node.lineno, f"from {node.module} import ..."))
            for a in node.names:
                if a.name in FORBIDDEN_ATTRIBUTES.get(node.module, ()):
                    found.append((node.lineno, f"from {node.module} import {a.name}"))
        elif isinstance(node, ast.Attribute):
            base = node.value
            name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
            if name in FORBIDDEN_MODULES or node.attr in FORBIDDEN_ATTRIBUTES.get(name, ()):
                found.append((node.lineno, f"{name}.{node.attr}"))
    return found


def test_only_the_runtime_module_reads_clocks_and_entropy():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        if path == THE_ONE_PLACE:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        offenders += [f"{path.relative_to(SRC.parent)}:{line}: {what}"
                      for line, what in reaches(tree)]  # fmt: skip
    assert not offenders, "read the clock or entropy outside idnode.runtime:\n" + "\n".join(
        offenders
    )


@pytest.mark.parametrize(
    "source",
    [
        "import time\nx = time.time()",
        "import time\ndef f(clock=time.monotonic): ...",
        "import datetime as dt\ndt.datetime.now(dt.UTC)",
        "from datetime import datetime\ndatetime.utcnow()",
        "import os\nos.urandom(16)",
        "import secrets",
        "from uuid import uuid4",
        "import random\nrandom.choice([1])",
    ],
)
def test_the_check_catches_each_way_of_reaching(source):
    assert reaches(ast.parse(source))


def test_the_check_lets_seeded_generators_and_formatting_through():
    ok = "import random, time\nrng = random.Random(7)\ntime.strftime('%Y', time.gmtime(0))"
    assert reaches(ast.parse(ok)) == []


def test_manual_clock_and_seeded_random_are_deterministic():
    clock = runtime.ManualClock(wall=0.0, monotonic=5.0)
    clock.advance(2.5)
    assert (clock(), clock.monotonic()) == (2.5, 7.5)
    clock.set(100.0)
    assert (clock(), clock.monotonic()) == (100.0, 7.5)  # the monotonic clock never jumps
    assert runtime.SeededRandom(1)(8) == runtime.SeededRandom(1)(8)
    assert runtime.randbits(runtime.SeededRandom(1), 31) < 1 << 31
    assert runtime.uuid4(runtime.SeededRandom(2)).version == 4


def test_the_system_clock_is_read_without_a_frame_of_its_own() -> None:
    """The clocks are read several times on every request: ``SystemClock``'s are the C
    functions themselves, not Python methods calling them."""
    import time

    clock = runtime.SystemClock()
    assert clock.monotonic is time.monotonic and clock.monotonic_ns is time.monotonic_ns
    assert type(clock).__call__ is time.time
    assert abs(clock() - time.time()) < 60  # (what it reads: the wall clock)
