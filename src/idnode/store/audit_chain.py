"""The audit chain's arithmetic: SM3 digests of states and of entries, and the check.

The store appends entries inside the transaction of the change they record (so a crash keeps
both or neither); ``registry.audit`` reads and verifies them. Each entry holds ``seq, time,
actor, action, target`` and the SM3 digests of the state before and after (canonical JSON,
so the log proves *what* changed without holding private data).
``digest = SM3(prev_digest | seq | time | actor | action | target | before | after)`` and
``prev_digest`` is the previous entry's digest (64 zeros for the first), so editing an entry
breaks its own digest, removing one leaves a gap in ``seq`` and breaks the next entry's link,
and swapping two breaks both. The head (last seq and digest) is kept in ``meta`` too, so
cutting entries off the end is noticed.

Verifying needs no key: an auditor checks a copy with this module and the rows alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes

GENESIS = "0" * 64
EMPTY = ""
HEAD_KEY = "audit_head"


def sm3_hex(data: bytes) -> str:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize().hex()


def state_digest(state: Any) -> str:
    """SM3 of canonical JSON of ``state``; the empty string when there is no state."""
    if state is None:
        return EMPTY
    return sm3_hex(orjson.dumps(state, option=orjson.OPT_SORT_KEYS, default=_default))


def _default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    raise TypeError(f"cannot digest {type(obj).__name__}")


def entry_digest(
    prev: str, seq: int, time: int, actor: str, action: str, target: str, before: str, after: str
) -> str:
    fields = [prev, str(seq), str(time), actor, action, target, before, after]
    return sm3_hex("\x1f".join(fields).encode("utf-8"))


@dataclass(frozen=True)
class Finding:
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.problem}"


def verify_chain(rows: Iterable[Mapping[str, Any]], head: str = "") -> tuple[int, list[Finding]]:
    """(entries checked, findings) over ``rows`` in storage order; no findings: intact.
    ``head`` is the recorded ``seq:digest`` of the last entry ('' if none was recorded)."""
    findings: list[Finding] = []
    expected_seq, prev, count = 1, GENESIS, 0
    for r in rows:
        count += 1
        seq = int(r["seq"])
        if seq != expected_seq:
            if seq > expected_seq:
                gap = f"{expected_seq}..{seq - 1}" if seq - 1 > expected_seq else expected_seq
                findings.append(Finding(seq, f"entries {gap} are missing (removed)"))
            else:
                findings.append(Finding(seq, f"out of order (expected {expected_seq})"))
        if r["prev_digest"] != prev:
            findings.append(Finding(seq, "link to the previous entry is broken"))
        recomputed = entry_digest(
            r["prev_digest"], seq, int(r["time"]), r["actor"], r["action"], r["target"],
            r["before_digest"], r["after_digest"],
        )  # fmt: skip
        if recomputed != r["digest"]:
            findings.append(Finding(seq, "contents were edited (digest does not match)"))
        expected_seq, prev = seq + 1, r["digest"]
    if head:
        head_seq, _, head_digest = head.partition(":")
        if int(head_seq) != expected_seq - 1 or head_digest != prev:
            findings.append(
                Finding(int(head_seq), "the log ends before its recorded head (truncated)")
            )
    return count, findings
