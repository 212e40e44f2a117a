"""An archived copy of the audit log that an auditor verifies with public material only.

``idnode audit export`` writes the chain as JSON lines -- one line per entry (the columns of
the ``audit`` table), then one head line ``{"head": "seq:digest", "node": ..., "signature":
...}`` whose signature is made with the node's server key over ``HEAD_CONTEXT || node ||
head``. Why sign only the head: the SM3 chain already binds every entry to the one after it,
so a valid signature over the last digest vouches for the whole log, and the auditor needs
nothing but the copy and the server's public key (the one the node publishes in its HS_SITE)
-- no storage key, no private key, no running node.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from idnode.crypto.keys import PrivateKey, PublicKey, default_hash, sign, verify
from idnode.errors import InvalidValue
from idnode.store.audit_chain import Finding, verify_chain

HEAD_CONTEXT = b"idnode audit head\x1f"
COLUMNS = ("seq", "time", "actor", "action", "target", "before_digest", "after_digest",
           "prev_digest", "digest")  # fmt: skip


def _signed_bytes(node: str, head: str) -> bytes:
    return HEAD_CONTEXT + node.encode("utf-8") + b"\x1f" + head.encode("ascii")


def export_lines(
    rows: Iterable[Mapping[str, Any]], head: str, node: str, key: PrivateKey
) -> Iterator[bytes]:
    """The export, line by line (each ending in a newline)."""
    for row in rows:
        yield orjson.dumps({c: row[c] for c in COLUMNS}) + b"\n"
    signature = sign(key, _signed_bytes(node, head), default_hash(key))
    tail = {"head": head, "node": node, "signature": base64.b64encode(signature).decode()}
    yield orjson.dumps(tail) + b"\n"


def verify_export(lines: Iterable[bytes], public_key: PublicKey) -> tuple[int, list[Finding]]:
    """(entries checked, findings) of an export; InvalidValue when it is not one at all.

    A head whose signature does not verify is a finding (the copy, or the key, is not the
    node's), as is every edited, removed or reordered entry."""
    rows: list[dict[str, Any]] = []
    tail: dict[str, Any] | None = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if tail is not None:
            raise InvalidValue(f"line {number}: entries after the signed head")
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise InvalidValue(f"line {number}: not JSON") from None
        if isinstance(obj, dict) and "head" in obj:
            tail = obj
        elif isinstance(obj, dict) and all(c in obj for c in COLUMNS):
            rows.append(obj)
        else:
            raise InvalidValue(f"line {number}: neither an audit entry nor the signed head")
    if tail is None:
        raise InvalidValue("no signed head line: not an `idnode audit export` file")
    head, node = tail.get("head"), tail.get("node")
    if not isinstance(head, str) or not isinstance(node, str):
        raise InvalidValue("the head line needs head and node strings")
    try:
        signature = base64.b64decode(str(tail.get("signature", "")), validate=True)
    except ValueError:
        raise InvalidValue("the head's signature is not base64") from None
    head_seq = head.partition(":")[0]
    if head and not head_seq.isdigit():
        raise InvalidValue(f"head {head!r} is not seq:digest")
    findings: list[Finding] = []
    if not verify(public_key, signature, _signed_bytes(node, head), default_hash(public_key)):
        seq = int(head_seq) if head else 0
        findings.append(Finding(seq, "the head's signature does not verify with this key"))
    try:
        count, chain = verify_chain(rows, head)
    except (TypeError, ValueError):
        raise InvalidValue("an entry has a field of the wrong type") from None
    return count, findings + chain
