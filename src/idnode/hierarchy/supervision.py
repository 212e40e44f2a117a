"""Supervision data upward: a child's report carries its monthly report and its audit chain's
head, signed with the child's admin key; the parent keeps every head and checks that each new
one extends the last it accepted.

**Evidence.** The parent holds the head it last accepted, ``(seq S, digest D)``. The child's
next report sends its head ``(N, H)`` and the *links* ``S+1 .. N``: each entry's fields
(``seq, time, actor, action, target, before, after``) and digest, never the state itself.
The parent recomputes ``entry_digest`` from ``D`` along the links (``audit_chain``); it must
arrive at ``H``. Because each digest covers the previous one, no chain whose entries up to
``S`` differ from the ones the parent saw can produce links from ``D``: a rewrite of the
history already reported is a *contradiction* the parent detects, whatever the child says.
Verdicts: ``first`` (nothing to compare), ``extends`` (proven), ``contradicts`` (shorter
chain, other digest at the same seq, links that do not start at ``D`` or do not hash to
``H``), ``unproven`` (links missing, e.g. the child restarted and did not yet know ``S``;
the parent answers with ``S`` and the next report proves it). Only ``first`` and
``extends`` heads become the baseline, so a rewrite stays detectable at every later report.

**Signature.** The report (canonical JSON without ``signature``) is signed with the child's
admin key, whose public half the parent keeps from enrolment (``children.public_key``); a
bad signature refuses the report, and the head rows say whether the report was signed.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from idnode.crypto.keys import PrivateKey, decode_public_key, default_hash, sign, verify
from idnode.errors import IdnodeError
from idnode.model import handle_key
from idnode.store.audit_chain import entry_digest
from idnode.store.effects import Statement

if TYPE_CHECKING:
    from idnode.store.base import Store

MAX_LINKS = 10_000  # entries one report carries (~2.5 MB, under the report body limit)
FIRST, EXTENDS, CONTRADICTS, UNPROVEN = "first", "extends", "contradicts", "unproven"
BASELINE = (
    "SELECT seq, digest FROM {s}.child_audit_heads WHERE key = ? AND verdict IN (?, ?)"
    " ORDER BY id DESC LIMIT 1"
)
LINK_FIELDS = ("seq", "time", "actor", "action", "target", "before_digest", "after_digest",
               "digest")  # fmt: skip


# -- child side --------------------------------------------------------------------------
async def audit_evidence(store: Store, since: int | None) -> dict[str, Any]:
    """This node's audit head, and the links after ``since`` (the seq the parent holds)."""
    head = await store.query_one("SELECT seq, digest FROM {s}.audit ORDER BY seq DESC LIMIT 1")
    seq, digest = (int(head["seq"]), head["digest"]) if head else (0, "")
    out: dict[str, Any] = {"seq": seq, "digest": digest}
    if since is not None and 0 <= since <= seq:
        rows = await store.query(
            "SELECT " + ", ".join(LINK_FIELDS) + " FROM {s}.audit WHERE seq > ? ORDER BY seq"
            " LIMIT ?",
            since,
            MAX_LINKS,
        )
        out["since"] = since
        out["links"] = [[r[f] for f in LINK_FIELDS] for r in rows]
    return out


def signed(report: dict[str, Any], key: PrivateKey) -> dict[str, Any]:
    """``report`` with its signature (over the canonical JSON of the rest)."""
    hash_name = default_hash(key)
    value = sign(key, canonical(report), hash_name)
    return {**report, "signature": {"hash": hash_name, "value": base64.b64encode(value).decode()}}


def canonical(report: Mapping[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in report.items() if k != "signature"},
                        option=orjson.OPT_SORT_KEYS)  # fmt: skip


# -- parent side -------------------------------------------------------------------------
def signature_ok(report: Mapping[str, Any], public_key: bytes | None) -> bool | None:
    """True / False for a signed report checked with the child's key; None if unsigned."""
    sig = report.get("signature")
    if sig is None:
        return None
    if not isinstance(sig, dict) or not public_key:
        return False
    try:
        value = base64.b64decode(str(sig.get("value", "")), validate=True)
        key = decode_public_key(bytes(public_key))
        return verify(key, value, canonical(report), str(sig.get("hash", "SHA256")))
    except (IdnodeError, ValueError, TypeError):
        return False


Head = tuple[int, str]  # (seq, digest)


def judge(baseline: Head | None, audit: Mapping[str, Any]) -> tuple[str, str, Head]:
    """(verdict, detail, head to keep) of a reported head against the last accepted one.
    The head kept is the reported one, except when the links prove only part of the way
    (more entries than one report carries): then the last proven entry, so the baseline
    advances and the next report proves the rest."""
    seq, digest = audit.get("seq"), audit.get("digest")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0 or not isinstance(digest, str):
        raise ValueError("audit: seq (integer) and digest (hex) are needed")
    head = (seq, digest)
    if baseline is None:
        return FIRST, "no earlier head to compare", head
    old_seq, old_digest = baseline
    if seq < old_seq:
        return CONTRADICTS, f"head {seq} is before the head {old_seq} reported earlier", head
    if seq == old_seq:
        if digest == old_digest:
            return EXTENDS, "unchanged", head
        return CONTRADICTS, f"entry {seq} now has another digest than reported earlier", head
    links, since = audit.get("links"), audit.get("since")
    if not isinstance(links, list) or not links or since != old_seq:
        return UNPROVEN, f"no links from {old_seq}; the next report can prove it", head
    return _walk(old_seq, old_digest, head, links)


def _walk(old_seq: int, prev: str, head: Head, links: Sequence[Any]) -> tuple[str, str, Head]:
    expected = old_seq + 1
    for link in links:
        if not isinstance(link, list) or len(link) != len(LINK_FIELDS):
            return CONTRADICTS, f"link {expected} is malformed", head
        n, time, actor, action, target, before, after, claimed = link
        if n != expected or n > head[0]:
            return CONTRADICTS, f"link {n} where {expected} was due (entries missing)", head
        if entry_digest(prev, n, int(time), actor, action, target, before, after) != claimed:
            where = "the head reported earlier" if n == old_seq + 1 else f"entry {n - 1}"
            why = f"entry {n} does not extend {where} (the chain was rewritten)"
            return CONTRADICTS, why, head
        prev, expected = claimed, expected + 1
    last = expected - 1
    if last == head[0]:
        if prev != head[1]:
            return CONTRADICTS, f"the links end at {last} with another digest than the head", head
        return EXTENDS, f"{len(links)} entries since {old_seq}", head
    partial = f"proven up to {last} of {head[0]}; the next report proves the rest"
    return EXTENDS, partial, (last, prev)


async def baseline_of(store: Store, key: str) -> tuple[int, str] | None:
    row = await store.query_one(BASELINE, key, FIRST, EXTENDS)
    return None if row is None else (int(row["seq"]), row["digest"])


async def head_statement(
    store: Store, key: str, now: int, report: Mapping[str, Any], signed_ok: bool | None
) -> tuple[Statement | None, dict[str, Any]]:
    """The ``child_audit_heads`` row a report adds (None if it carries no head), and what
    the parent answers the child: the verdict and the seq it now holds."""
    audit = report.get("audit")
    if audit is None:
        return None, {}
    if not isinstance(audit, dict):
        raise ValueError("audit: a JSON object")
    baseline = await baseline_of(store, key)
    verdict, detail, kept = judge(baseline, audit)
    if signed_ok is None:
        detail += "; report unsigned"
    month = ""
    monthly = report.get("monthly")
    if isinstance(monthly, dict) and isinstance(monthly.get("month"), str):
        month = monthly["month"][:7]
    row = Statement(
        "INSERT INTO {s}.child_audit_heads (key, time, seq, digest, verdict, detail, month)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (key, now, kept[0], kept[1][:128], verdict, detail[:500], month),
    )
    held = kept[0] if verdict in (FIRST, EXTENDS) else (baseline or (None,))[0]
    return row, {"audit": {"verdict": verdict, "detail": detail, "held_seq": held}}


async def child_reports(store: Store, prefix: str, limit: int = 50) -> dict[str, Any]:
    """What a child reported and when: its audit heads with their verdicts (newest first),
    the monthly report of its last report, and whether any head contradicted an earlier."""
    key = handle_key(prefix)
    child = await store.query_one("SELECT prefix, state FROM {s}.children WHERE key = ?", key)
    if child is None:
        raise LookupError(f"{prefix} is not a child of this node")
    heads = await store.query(
        "SELECT time, seq, digest, verdict, detail, month FROM {s}.child_audit_heads"
        " WHERE key = ? ORDER BY id DESC LIMIT ?",
        key, limit,
    )  # fmt: skip
    contradictions = await store.query_value(
        "SELECT count(*) FROM {s}.child_audit_heads WHERE key = ? AND verdict = ?",
        key, CONTRADICTS,
    )  # fmt: skip
    last = await store.query_one(
        "SELECT time, body FROM {s}.reports WHERE key = ? ORDER BY id DESC LIMIT 1", key
    )
    body = orjson.loads(last["body"]) if last else {}
    return {
        "prefix": child["prefix"],
        "state": child["state"],
        "last_report": None if last is None else last["time"],
        "monthly": body.get("monthly"),
        "audit_heads": heads,
        "contradictions": int(contradictions or 0),
    }
