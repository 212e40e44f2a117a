"""Where an authenticated create's time goes, layer by layer, in one process (issue 16).

``bench/writes.py`` measures creates through the transports (TCP sessions, REST); this
opens the same kind of node (``idnode init``, SQLite) in-process and times the layers under
the transports, each from ``--tasks`` concurrent tasks (so the store's group commit shares
COMMITs as it does for concurrent clients), each for ``--seconds``:

1. **service**: ``AdminService.create_handle`` as the operator: the record checked and
   stamped, the existing record read, the permission checked, the effects built (audit
   chain, history, statistics, template bookkeeping...), the store's write;
2. **store + effects**: ``store.create_handle`` with the effects the service built for
   each identifier beforehand: the store's transaction alone;
3. **store, the record alone**: ``store.create_handle`` without effects: the handle, its
   values, its stored answer and the log entry;
4. **SQLite alone**: the statements of layer 3 (arguments built in the loop, ``executemany``
   per table) with 1, 8 and 32 creates a transaction: what SQLite itself costs, and how
   much of it each COMMIT costs.

Between 3 and 4 it prints which B-trees one create alone writes (the WAL's frames: a page
each, and two ``pwrite`` calls a frame): the cost every transaction pays, however small.

Each line prints creates/s and the process's CPU per create (every thread: the store's
checkpoints included). The difference between two layers is the cost of the one above;
``bench/writes.py``'s server CPU per create minus layer 1 is the transports' and sessions'.
Prints figures; asserts nothing.

    .venv/bin/python bench/write_layers.py [--seconds 5] [--tasks 8]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.conftest helpers

from tests.conftest import IDNODE  # noqa: E402

from idnode.app import Features, open_node  # noqa: E402
from idnode.auth.identity import Identity  # noqa: E402
from idnode.config import load_config  # noqa: E402
from idnode.model import HandleValue, handle_key  # noqa: E402
from idnode.runtime import system  # noqa: E402
from idnode.service.policies import Write  # noqa: E402
from idnode.store.effects import NO_EFFECTS  # noqa: E402

PREFIX = "20.500.162"
OPERATOR = Identity(f"0.NA/{PREFIX}", 300)
BATCHES = (1, 8, 32)  # layer 4: creates a transaction (32: the store's most a group commit)


def url_value(n: int) -> list[HandleValue]:
    return [HandleValue(1, "URL", f"https://example.com/{n}".encode())]


async def timed(label: str, seconds: float, tasks: int, create: Callable[[int], Awaitable]):
    """Run ``create(n)`` for n = 0, 1, ... from ``tasks`` tasks for ``seconds``."""
    counter = iter(range(10**9))
    stop_at = time.monotonic() + seconds

    async def worker() -> int:
        done = 0
        while time.monotonic() < stop_at:
            await create(next(counter))
            done += 1
        return done

    cpu, wall = time.process_time(), time.perf_counter()
    made = sum(await asyncio.gather(*(worker() for _ in range(tasks))))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"  {label:34} {made / wall:8,.0f} creates/s  {cpu / made * 1e6:6.1f} us CPU a create")


async def layers(root: Path, seconds: float, tasks: int) -> None:
    node = await open_node(
        load_config(root), runtime=system(), features=Features(hierarchy=False, console=False)
    )
    try:
        admin, store = node.admin, node.store
        await timed(
            "1. service (AdminService)",
            seconds,
            tasks,
            lambda n: admin.create_handle(OPERATOR, f"{PREFIX}/svc-{n}", url_value(n)),
        )
        # the effects the service gives each create, built before the clock starts
        prepared = []
        for n in range(int(seconds * 20_000)):
            handle, values = f"{PREFIX}/eff-{n}", admin._stamp(url_value(n))
            effects = admin._effects(Write(OPERATOR, "create", handle, None, values), NO_EFFECTS)
            prepared.append((handle, values, effects))
        await timed(
            "2. store + the service's effects",
            seconds,
            tasks,
            lambda n: store.create_handle(prepared[n][0], prepared[n][1], effects=prepared[n][2]),
        )
        await timed(
            "3. store, the record alone",
            seconds,
            tasks,
            lambda n: store.create_handle(f"{PREFIX}/rec-{n}", url_value(n)),
        )
        await pages_of_one_create(root / "node.db", store, admin)
    finally:
        await node.close()


async def pages_of_one_create(db: Path, store, admin) -> None:
    """Which B-trees one create alone in its transaction writes: the WAL's frames (one page
    each, written with two ``pwrite`` calls) named by SQLite's ``dbstat``."""
    conn = store.inner._wconn  # (EncryptedStore over SQLiteStore; the writer's connection)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    await admin.create_handle(OPERATOR, f"{PREFIX}/one", url_value(0))
    wal = Path(f"{db}-wal").read_bytes()
    page_size = int.from_bytes(wal[8:12], "big")
    pages = [
        int.from_bytes(wal[at : at + 4], "big")
        for at in range(32, len(wal) - page_size - 23, 24 + page_size)
    ]
    names = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    trees = Counter(names.get(p, f"page {p}") for p in pages)
    print(f"  one create alone writes {len(pages)} pages: " + ", ".join(
        name if n == 1 else f"{name} x{n}" for name, n in sorted(trees.items())))  # fmt: skip


def sqlite_alone(db: Path, seconds: float, batch: int) -> None:
    """Layer 4: the record's statements, arguments ready, ``batch`` creates a transaction."""
    from idnode.store.sqlite import _INSERT_VALUE, _PUT_ANSWER, _answer_row, _value_row
    from idnode.wire.public_answer import ENCODER

    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    made, cpu, wall = 0, time.process_time(), time.perf_counter()
    stop_at = time.monotonic() + seconds
    while time.monotonic() < stop_at:
        handles, values, answers, logs = [], [], [], []
        for n in range(made, made + batch):
            handle, record = f"{PREFIX}/sql-{batch}-{n}", url_value(n)
            key = handle_key(handle)
            handles.append((key, handle, handle_key(PREFIX)))
            values.extend(_value_row(key, v) for v in record)
            answers.append(_answer_row(key, ENCODER(record)))
            logs.append((0, "create", handle))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO handles VALUES (?, ?, ?)", handles)
        conn.executemany(_INSERT_VALUE, values)
        conn.executemany(_PUT_ANSWER, answers)
        conn.executemany("INSERT INTO txlog (timestamp, action, handle) VALUES (?, ?, ?)", logs)
        conn.execute("COMMIT")
        made += batch
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    conn.close()
    label = f"4. SQLite alone, {batch} a transaction"
    print(f"  {label:34} {made / wall:8,.0f} creates/s  {cpu / made * 1e6:6.1f} us CPU a create")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--tasks", type=int, default=8)
    args = parser.parse_args()
    print(f"{platform.machine()}, {platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "node"
        subprocess.run([*IDNODE, "init", str(root), "--prefix", PREFIX], check=True,
                       capture_output=True)  # fmt: skip
        print(f"one process, {args.tasks} tasks, {args.seconds:g} s a layer")
        asyncio.run(layers(root, args.seconds, args.tasks))
        for batch in BATCHES:
            sqlite_alone(root / "node.db", args.seconds, batch)
    print("reproduce: .venv/bin/python bench/write_layers.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
