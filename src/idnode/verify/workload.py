"""What to ask: the key set, the hit/miss/typed mix, and the request bytes for each protocol.

A key set is either a file (one handle per line) or ``PREFIX/item-0 .. PREFIX/item-N-1``,
the names ``prepare`` loads, generated on demand so ten million keys cost no memory.
A miss is a name under the same prefix that no key set contains, so the server answers
HANDLE_NOT_FOUND (100) rather than "not responsible". A typed query asks a hit key for one
value type (``URL`` by default, which every seeded record has) and must get only that type.

Wire requests are written by ``encode_resolution`` straight from struct packs, because the
generator builds one per request; ``tests/verify`` pins its output byte for byte to
``idnode.wire.message.encode_message`` so the codec stays the source of truth.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from idnode.codes import OpCode, OpFlag

HIT, MISS, TYPED = "hit", "miss", "typed"
KINDS = (HIT, MISS, TYPED)
MISS_LABEL = "idnode-bench-miss-"

SUCCESS = 1
HANDLE_NOT_FOUND = 100


def parse_mix(text: str) -> dict[str, int]:
    """``"hit=80,miss=15,typed=5"`` -> weights; kinds left out weigh 0."""
    mix = dict.fromkeys(KINDS, 0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, weight = part.partition("=")
        name = name.strip().lower()
        if not sep or name not in mix:
            raise ValueError(f"bad mix entry {part!r}: use kind=weight with kind in {KINDS}")
        try:
            mix[name] = int(weight)
        except ValueError:
            raise ValueError(f"bad weight in {part!r}: an integer is needed") from None
        if mix[name] < 0:
            raise ValueError(f"negative weight in {part!r}")
    if sum(mix.values()) <= 0:
        raise ValueError("the mix needs at least one positive weight")
    return mix


@dataclass(frozen=True, slots=True)
class KeySet:
    """Handles to resolve: ``keys`` from a file, or ``prefix``/``count`` generated names."""

    prefix: str = ""
    count: int = 0
    keys: tuple[str, ...] = ()

    @classmethod
    def generated(cls, prefix: str, count: int) -> KeySet:
        if count <= 0 or not prefix:
            raise ValueError("a generated key set needs a prefix and a positive count")
        return cls(prefix=prefix, count=count)

    @classmethod
    def from_file(cls, path: Path) -> KeySet:
        keys = tuple(line.strip() for line in path.read_text("utf-8").splitlines())
        keys = tuple(k for k in keys if k and not k.startswith("#"))
        if not keys:
            raise ValueError(f"{path}: no handles in the key file")
        return cls(prefix=keys[0].split("/", 1)[0], count=len(keys), keys=keys)

    def key(self, i: int) -> str:
        return self.keys[i] if self.keys else f"{self.prefix}/item-{i}"

    def describe(self) -> str:
        return f"{self.count} keys" + ("" if self.keys else f" {self.prefix}/item-N")


@dataclass(frozen=True, slots=True)
class Op:
    """One request to make: its kind, handle and (typed queries) the asked-for type."""

    kind: str
    handle: str
    type: str | None = None


class Plan:
    """An endless, seeded stream of ``Op`` following the mix; one per client process."""

    def __init__(self, keys: KeySet, mix: dict[str, int], typed_type: str, seed: int) -> None:
        self.keys = keys
        self.typed_type = typed_type
        self.rng = random.Random(seed)
        self.table: list[str] = [k for k in KINDS for _ in range(mix.get(k, 0))]
        self._misses = 0
        self._tag = f"{seed:x}-"

    def next(self) -> Op:
        rng = self.rng
        kind = self.table[rng.randrange(len(self.table))]
        if kind == MISS:
            self._misses += 1
            return Op(MISS, f"{self.keys.prefix}/{MISS_LABEL}{self._tag}{self._misses}")
        handle = self.keys.key(rng.randrange(self.keys.count))
        if kind == TYPED:
            return Op(TYPED, handle, self.typed_type)
        return Op(HIT, handle)


# -- wire bytes -----------------------------------------------------------------------------

_ENV = struct.Struct(">BBBBIIII")
_HDR = struct.Struct(">IIIHBBII")
_U32 = struct.Struct(">I")
_PO = int(OpFlag.PO)


def encode_resolution(handle: str, type_: str | None, request_id: int) -> bytes:
    """Envelope + header + ResolutionRequest body + empty credential, as ``encode_message``
    writes ``transport.client.resolution_request(handle, types=..., request_id=...)``."""
    name = handle.encode("utf-8")
    body = _U32.pack(len(name)) + name + _U32.pack(0)  # handle, no indexes
    if type_ is None:
        body += _U32.pack(0)
    else:
        t = type_.encode("utf-8")
        body += _U32.pack(1) + _U32.pack(len(t)) + t
    header = _HDR.pack(int(OpCode.RESOLUTION), 0, _PO, 0, 0, 0, 0, len(body))
    payload = header + body + _U32.pack(0)
    envelope = _ENV.pack(2, 1, 2, 11, 0, request_id & 0xFFFFFFFF, 0, len(payload))
    return envelope + payload


def http_request(op: Op, host: str) -> bytes:
    """A keep-alive HTTP/1.1 GET of /api/handles/{handle} (``?type=`` for typed queries)."""
    path = "/api/handles/" + quote(op.handle, safe="/:@!$&'()*+,;=-._~")
    if op.type is not None:
        path += "?type=" + quote(op.type, safe="")
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode()
