"""The seeded, bounded fuzz run of CI (part of ``make test``) and the crash regressions.

``make fuzz`` runs the same targets for a million inputs; here 20,000 seeded inputs (every
corpus entry and every checked-in crash first) keep each decoder honest in a second or two.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.driver import CORPUS, CRASHES, NAMES, run_python
from tests.fuzz.targets import TARGETS, run_one

CI_RUNS = 20_000


def test_every_target_has_a_corpus() -> None:
    for name in TARGETS:
        assert list((CORPUS / name).glob("*.bin")), f"no corpus for {name}"


@pytest.mark.parametrize("name", NAMES)
def test_corpus_inputs_are_accepted_or_refused_cleanly(name: str) -> None:
    for path in sorted((CORPUS / name).glob("*.bin")):
        run_one(name, path.read_bytes())


def _crash_inputs() -> list[Path]:
    return sorted(CRASHES.glob("*/*.bin")) if CRASHES.exists() else []


@pytest.mark.parametrize("path", _crash_inputs(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_crash_regressions(path: Path) -> None:
    """Each input a fuzz run once crashed on; the fix must hold."""
    run_one(path.parent.name, path.read_bytes())


def test_seeded_bounded_run() -> None:
    assert run_python(CI_RUNS, seed=20261125) >= CI_RUNS
