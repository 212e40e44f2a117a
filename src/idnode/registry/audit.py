"""The append-only audit log: every governance action and identifier write, chained by SM3.

Each entry holds ``seq, time, actor, action, target`` and the SM3 digests of the state before
and after (canonical JSON, so the log proves *what* changed without holding private data).
``digest = SM3(prev_digest | seq | time | actor | action | target | before | after)`` and
``prev_digest`` is the previous entry's digest (64 zeros for the first), so editing an entry
breaks its own digest, removing one leaves a gap in ``seq`` and breaks the next entry's link,
and swapping two breaks both. The head (last seq and digest) is also kept in ``meta`` so
cutting entries off the end is noticed too.

What this cannot stop is someone who rewrites the whole chain from the edit onwards with the
tool itself; exporting the head digest elsewhere (the monthly report carries it) pins it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes

from idnode.registry.db import RegistryDB

GENESIS = "0" * 64
EMPTY = ""


def sm3(data: bytes) -> str:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize().hex()


def state_digest(state: Any) -> str:
    """SM3 of canonical JSON of ``state``; the empty string when there is no state."""
    if state is None:
        return EMPTY
    return sm3(orjson.dumps(state, option=orjson.OPT_SORT_KEYS, default=_default))


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    raise TypeError(f"cannot digest {type(obj).__name__}")


def entry_digest(
    prev: str, seq: int, time: int, actor: str, action: str, target: str, before: str, after: str
) -> str:
    fields = [prev, str(seq), str(time), actor, action, target, before, after]
    return sm3("\x1f".join(fields).encode("utf-8"))


@dataclass(frozen=True)
class Finding:
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.problem}"


class AuditLog:
    def __init__(self, db: RegistryDB, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    def append(
        self,
        actor: str,
        action: str,
        target: str,
        before: Any = None,
        after: Any = None,
        *,
        conn: sqlite3.Connection | None = None,
    ) -> int:
        """Append one entry (inside the caller's transaction when it has one); its seq."""
        with self.db.tx() as c:
            c = conn or c
            row = c.execute("SELECT seq, digest FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
            now = int(self.clock())
            b, a = state_digest(before), state_digest(after)
            digest = entry_digest(prev, seq, now, actor, action, target, b, a)
            c.execute(
                "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, now, actor, action, target, b, a, prev, digest),
            )
            self.db.set_meta(c, "audit_head", f"{seq}:{digest}")
            return seq

    def entries(self, since: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        rows = self.db.all("SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", (since, limit))
        return [dict(r) for r in rows]

    def verify(self) -> tuple[int, list[Finding]]:
        """(entries checked, findings); no findings means the chain is intact."""
        findings: list[Finding] = []
        expected_seq, prev = 1, GENESIS
        count = 0
        rows = self.db.all("SELECT * FROM audit ORDER BY rowid")
        for r in rows:
            count += 1
            seq = r["seq"]
            if seq != expected_seq:
                if seq > expected_seq:
                    gap = f"{expected_seq}..{seq - 1}" if seq - 1 > expected_seq else expected_seq
                    findings.append(Finding(seq, f"entries {gap} are missing (removed)"))
                else:
                    findings.append(Finding(seq, f"out of order (expected {expected_seq})"))
            if r["prev_digest"] != prev:
                findings.append(Finding(seq, "link to the previous entry is broken"))
            recomputed = entry_digest(
                r["prev_digest"], seq, r["time"], r["actor"], r["action"], r["target"],
                r["before_digest"], r["after_digest"],
            )  # fmt: skip
            if recomputed != r["digest"]:
                findings.append(Finding(seq, "contents were edited (digest does not match)"))
            expected_seq, prev = seq + 1, r["digest"]
        head = self.db.get_meta("audit_head")
        if head:
            head_seq, _, head_digest = head.partition(":")
            if int(head_seq) != expected_seq - 1 or head_digest != prev:
                findings.append(
                    Finding(int(head_seq), "the log ends before its recorded head (truncated)")
                )
        return count, findings
