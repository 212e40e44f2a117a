"""Encoded answers to anonymous resolutions, reused until the store changes.

One class serves both faces: the binary protocol keys answers as described below; the REST
API keys them by request target (``http_fast``).

An authoritative server answers the same hot identifiers again and again (Knot and NSD
answer from precomputed data for the same reason). A cached answer costs one dict lookup
and a request-id patch instead of decode, store read, permission filter and encode.

The key is the request exactly as it arrived, minus its request id: envelope, header and
body bytes (which carry the version, the handle, the index and type lists and every flag),
so two requests share an entry only when the server would answer them alike. Only
anonymous requests are put (no session, no credential, no certified flag), as only their
answer is the same for everyone; a datagram is then looked up by its raw bytes without
being checked, since a request that is not shareable differs from every key put.

Consistency: any committed write clears the whole cache (the store announces every serial,
from this process and from others). A lookup that started before the write cannot put its
now-stale answer back, because entries are only stored if the cache's generation did not
change while the answer was being computed.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from idnode.codes import OpFlag
from idnode.wire import peek
from idnode.wire.envelope import ENVELOPE_SIZE, Envelope, encode_envelope
from idnode.wire.header import HEADER_SIZE
from idnode.wire.message import patch_request_id

_UNCACHEABLE_FLAGS = int(OpFlag.CT | OpFlag.ENC | OpFlag.REC | OpFlag.AT)  # int: no enum math


def _shareable(payload: bytes) -> bool:
    """Whether ``payload`` is an anonymous resolution whose answer may be shared."""
    if len(payload) < HEADER_SIZE or not peek.is_resolution(payload):
        return False
    # signed, encrypted, recursive or authoritative; or not anonymous
    return not (peek.op_flags(payload) & _UNCACHEABLE_FLAGS or peek.has_credential(payload))


requested_handle = peek.resolution_handle  # what the resolver's gate is asked about


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    stores: int = 0
    invalidations: int = 0


class ResponseCache:
    """A bounded LRU of encoded answers, cleared on every committed write."""

    def __init__(self, max_entries: int = 100_000, max_answer_bytes: int = 16 * 1024) -> None:
        self.max_entries = max_entries
        self.max_answer_bytes = max_answer_bytes
        self._entries: OrderedDict[bytes, tuple[bytes, str]] = OrderedDict()
        self.generation = 0
        self.stats = CacheStats()
        # Admission: while there is room every answer is kept; once full, an answer is kept
        # only the second time it is computed, so identifiers asked for once (a scan, a
        # uniform spread over millions) do not evict the hot ones.
        self._seen_once: set[int] = set()

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(envelope: Envelope, payload: bytes) -> bytes | None:
        """The cache key of a decoded request, or None when its answer must not be shared:
        ``datagram_key`` of the request encoded again (so a key always spells a request)."""
        if envelope.session_id or envelope.encrypted or envelope.compressed:
            return None  # personal, or not what it looks like in clear
        if not _shareable(payload):
            return None
        raw = encode_envelope(envelope)
        return raw[:8] + raw[12:] + payload

    @staticmethod
    def datagram_key(datagram: bytes) -> bytes:
        """The key to look a one-datagram request up by: its bytes minus the request id.

        Nothing is checked here (the UDP hot path decodes nothing): every entry was put
        under the key of a request found shareable (``key``, ``plain_datagram``), so a
        request that is not (a session, a credential, encrypted, one piece of several)
        differs from every key in some byte and finds nothing. Put it only for a request
        ``key`` accepted."""
        return datagram[:8] + datagram[12:]

    def hit(self, key: bytes) -> tuple[bytes, str] | None:
        """``peek`` for the hot paths: a hit is counted, a miss is not (the path that then
        answers counts it)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            self.stats.hits += 1
        return entry

    def contains(self, key: bytes) -> bool:
        return key in self._entries

    def peek(self, key: bytes) -> tuple[bytes, str] | None:
        """(the answer as stored, the handle it answers), or None; counts a hit or a miss."""
        entry = self._entries.get(key)
        if entry is None:
            self.stats.misses += 1
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return entry

    def get(self, key: bytes, request_id: int) -> tuple[bytes, str] | None:
        """(the wire answer with ``request_id`` patched in, the handle it answers), or None."""
        entry = self.peek(key)
        if entry is None:
            return None
        return patch_request_id(entry[0], request_id), entry[1]

    def put(self, key: bytes, answer: bytes, generation: int, handle: str = "") -> None:
        """Keep ``answer`` unless a write committed since ``generation`` was read."""
        if generation != self.generation or len(answer) > self.max_answer_bytes:
            return
        if len(answer) < ENVELOPE_SIZE:
            return
        fingerprint = hash(key)
        # a key already kept is replaced whatever the room (an answer renewed when its
        # expiration drew near, wire_handler)
        full = len(self._entries) >= self.max_entries and key not in self._entries
        if full and fingerprint not in self._seen_once:
            if len(self._seen_once) >= self.max_entries:
                self._seen_once.clear()
            self._seen_once.add(fingerprint)
            return
        self._seen_once.discard(fingerprint)
        self._entries[key] = (answer, handle)
        self._entries.move_to_end(key)
        self.stats.stores += 1
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, serial: int = 0) -> None:
        """Forget everything: a write committed (``serial`` is the store's new serial)."""
        self.generation += 1
        self.stats.invalidations += 1
        self._entries.clear()
        self._seen_once.clear()
