"""An in-process node with its registry: fresh per test, no background work."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from idnode.app import NodeApp as Node
from idnode.app import open_node
from idnode.bootstrap import init_node
from idnode.registry.service import Registry
from idnode.runtime import ManualClock, Runtime, SeededRandom

VALID_CODE = "91350100M000100Y43"
OTHER_CODE = "914403001922038216"
FIELDS = ["suffix", "PART_NUMBER", "PART_NAME", "MODEL", "BATCH", "PRODUCTION_DATE",
          "MANUFACTURER"]  # fmt: skip


@dataclass
class Env:
    node: Node
    reg: Registry
    clock: ManualClock
    tmp: Path

    async def allocated(self, prefix: str = "88.123.4567", code: str = VALID_CODE) -> dict:
        """An approved organisation holding ``prefix`` (auto-parts)."""
        reg = self.reg
        org = await reg.organisations.apply("t", "Fujian Auto Parts Co., Ltd.", code, CONTACT)
        await reg.organisations.approve("t", org["id"])
        await reg.prefixes.apply("t", prefix, org["id"], "auto-parts")
        await reg.prefixes.approve("t", prefix)
        await reg.prefixes.allocate("t", prefix)
        return await reg.organisations.get(org["id"])

    def csv(self, rows: list[list[str]], name: str = "rows.csv") -> Path:
        path = self.tmp / name
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(FIELDS)
            w.writerows(rows)
        return path

    async def audit_count(self) -> int:
        return await self.reg.audit.count()


CONTACT = {"name": "Lin Wei", "phone": "+86 591 88880000", "email": "lin@example.cn"}


def row(i: int, **over: str) -> list[str]:
    base = {"suffix": f"P{i:05d}", "PART_NUMBER": "BP-1", "PART_NAME": "Brake pad",
            "MODEL": "X1", "BATCH": "B1", "PRODUCTION_DATE": "2026-11-02",
            "MANUFACTURER": "Fujian Auto Parts"}  # fmt: skip
    base.update(over)
    return [base[f] for f in FIELDS]


@pytest.fixture
async def env(tmp_path):
    """A node whose every part (store log, registry, audit, statistics) runs on one clock,
    set to 2026-11-02 whatever the machine's date."""
    async with node_env(tmp_path, Runtime(ManualClock(NOV_2_2026), SeededRandom(0))) as e:
        yield e


NOV_2_2026 = 1_793_577_600.0


@asynccontextmanager
async def node_env(tmp_path: Path, runtime: Runtime) -> AsyncIterator[Env]:
    """A fresh node in ``tmp_path`` on ``runtime``, closed on the way out."""
    cfg = await init_node(tmp_path / "node", name="t", prefixes=["88.123"], runtime=runtime)
    node = await open_node(cfg, runtime=runtime)
    env = Env(node, node.registry, runtime.clock, tmp_path)
    try:
        yield env
    finally:
        await node.close()
