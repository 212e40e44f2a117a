import pytest

from idnode.registry.audit import AuditLog
from idnode.registry.db import RegistryDB


@pytest.fixture
def log(tmp_path):
    db = RegistryDB(tmp_path / "registry.db")
    audit = AuditLog(db, lambda: 1_793_577_600)
    for i in range(1, 7):
        audit.append("op", "prefix.allocated", f"88.123.{i}", {"state": "a"}, {"state": "b"})
    yield audit
    db.close()


def raw(log: AuditLog, sql: str, args=()) -> None:
    with log.db.tx() as c:
        c.execute(sql, args)


def test_intact_chain_verifies(log):
    assert log.verify() == (6, [])


def test_edited_entry_is_named(log):
    raw(log, "UPDATE audit SET target = 'x' WHERE seq = 4")
    _, findings = log.verify()
    assert [str(f) for f in findings] == ["entry 4: contents were edited (digest does not match)"]


def test_removed_entry_is_named(log):
    raw(log, "DELETE FROM audit WHERE seq = 3")
    _, findings = log.verify()
    text = [str(f) for f in findings]
    assert "entry 4: entries 3 are missing (removed)" in text
    assert "entry 4: link to the previous entry is broken" in text


def test_reordered_entries_are_named(log):
    rows = {r["seq"]: dict(r) for r in log.db.all("SELECT * FROM audit")}
    with log.db.tx() as c:  # swap the contents of entries 2 and 5, seqs kept
        for a, b in ((2, 5), (5, 2)):
            r = rows[b]
            c.execute(
                "UPDATE audit SET time=?, actor=?, action=?, target=?, before_digest=?,"
                " after_digest=?, prev_digest=?, digest=? WHERE seq = ?",
                (r["time"], r["actor"], r["action"], r["target"], r["before_digest"],
                 r["after_digest"], r["prev_digest"], r["digest"], a),
            )  # fmt: skip
    _, findings = log.verify()
    assert {f.seq for f in findings} >= {2, 5}


def test_truncated_tail_is_noticed(log):
    raw(log, "DELETE FROM audit WHERE seq = 6")
    _, findings = log.verify()
    assert any("truncated" in str(f) for f in findings)
