"""The audit chain names every edited, removed, reordered or cut entry (checked on a real
store file, edited behind the node's back as an attacker with file access would)."""

import sqlite3

import pytest

from idnode.registry.audit import AuditLog
from idnode.runtime import ManualClock
from idnode.store.effects import AuditEntry, Effects
from idnode.store.sqlite import SQLiteStore


@pytest.fixture
async def log(tmp_path):
    store = SQLiteStore(str(tmp_path / "node.db"), clock=ManualClock())
    await store.open()
    for i in range(1, 7):
        entry = AuditEntry("op", "prefix.allocated", f"88.123.{i}", "a" * 64, "b" * 64)
        await store.apply(Effects(audit=(entry,)))
    yield AuditLog(store), tmp_path / "node.db"
    await store.close()


def raw(path, sql: str, args=()) -> None:
    with sqlite3.connect(path) as c:
        c.execute(sql, args)


async def test_intact_chain_verifies(log):
    assert await log[0].verify() == (6, [])


async def test_edited_entry_is_named(log):
    raw(log[1], "UPDATE audit SET target = 'x' WHERE seq = 4")
    _, findings = await log[0].verify()
    assert [str(f) for f in findings] == ["entry 4: contents were edited (digest does not match)"]


async def test_removed_entry_is_named(log):
    raw(log[1], "DELETE FROM audit WHERE seq = 3")
    _, findings = await log[0].verify()
    text = [str(f) for f in findings]
    assert "entry 4: entries 3 are missing (removed)" in text
    assert "entry 4: link to the previous entry is broken" in text


async def test_reordered_entries_are_named(log):
    with sqlite3.connect(log[1]) as c:  # swap the contents of entries 2 and 5, seqs kept
        c.row_factory = sqlite3.Row
        rows = {r["seq"]: dict(r) for r in c.execute("SELECT * FROM audit")}
        for a, b in ((2, 5), (5, 2)):
            r = rows[b]
            c.execute(
                "UPDATE audit SET time=?, actor=?, action=?, target=?, before_digest=?,"
                " after_digest=?, prev_digest=?, digest=? WHERE seq = ?",
                (r["time"], r["actor"], r["action"], r["target"], r["before_digest"],
                 r["after_digest"], r["prev_digest"], r["digest"], a),
            )  # fmt: skip
    _, findings = await log[0].verify()
    assert {f.seq for f in findings} >= {2, 5}


async def test_truncated_tail_is_noticed(log):
    raw(log[1], "DELETE FROM audit WHERE seq = 6")
    _, findings = await log[0].verify()
    assert any("truncated" in str(f) for f in findings)
