"""The encoded-response cache: what it shares, what it refuses, and when it forgets."""

from __future__ import annotations

from idnode.codes import OpCode, OpFlag
from idnode.transport.client import resolution_request, siteinfo_request
from idnode.transport.response_cache import ResponseCache
from idnode.wire.envelope import ENVELOPE_SIZE, Envelope, decode_envelope
from idnode.wire.header import Header
from idnode.wire.message import encode_message


def split(message) -> tuple[Envelope, bytes]:
    raw = encode_message(message)
    return decode_envelope(raw[:ENVELOPE_SIZE]), raw[ENVELOPE_SIZE:]


def test_same_query_different_request_ids_share_a_key():
    a = split(resolution_request("20.500.1/x", request_id=1))
    b = split(resolution_request("20.500.1/x", request_id=2))
    assert ResponseCache.key(*a) == ResponseCache.key(*b) is not None


def test_different_shapes_do_not_share():
    base = ResponseCache.key(*split(resolution_request("20.500.1/x")))
    typed = ResponseCache.key(*split(resolution_request("20.500.1/x", types=("URL",))))
    private = ResponseCache.key(*split(resolution_request("20.500.1/x", public_only=False)))
    other = ResponseCache.key(*split(resolution_request("20.500.1/y")))
    assert len({base, typed, private, other}) == 4


def test_uncacheable_requests():
    msg = resolution_request("20.500.1/x")
    msg.header = Header(opcode=OpCode.RESOLUTION, flags=OpFlag.PO | OpFlag.CT)
    assert ResponseCache.key(*split(msg)) is None  # certified answers are signed per request
    env, payload = split(resolution_request("20.500.1/x"))
    env.session_id = 7
    assert ResponseCache.key(env, payload) is None  # answers within a session are personal
    env.session_id, env.encrypted = 0, True
    assert ResponseCache.key(env, payload) is None  # an encrypted request is refused, not served
    assert ResponseCache.key(*split(siteinfo_request())) is None  # resolution only
    assert ResponseCache.key(env, payload + b"\x00\x00\x00\x09extra....") is None


def test_hit_patches_request_id_and_invalidation_clears():
    cache = ResponseCache()
    env, payload = split(resolution_request("20.500.1/x", request_id=1))
    key = ResponseCache.key(env, payload)
    answer = encode_message(resolution_request("20.500.1/x", request_id=1))  # any message
    cache.put(key, answer, cache.generation, "20.500.1/x")
    assert cache.get(key, 99) is None  # admitted only when computed a second time
    cache.put(key, answer, cache.generation, "20.500.1/x")
    hit, handle = cache.get(key, 99)
    assert handle == "20.500.1/x"
    assert decode_envelope(hit[:ENVELOPE_SIZE]).request_id == 99
    assert hit[12:] == answer[12:]
    cache.invalidate(5)
    assert cache.get(key, 1) is None
    assert (cache.stats.hits, cache.stats.misses, cache.stats.invalidations) == (1, 2, 1)


def test_answer_computed_across_a_write_is_not_stored():
    cache = ResponseCache()
    env, payload = split(resolution_request("20.500.1/x"))
    key = ResponseCache.key(env, payload)
    generation = cache.generation  # lookup starts
    cache.invalidate(2)  # a write commits meanwhile
    cache.put(key, b"\x00" * 40, generation)
    cache.put(key, b"\x00" * 40, generation)
    assert len(cache) == 0


def test_lru_bound():
    cache = ResponseCache(max_entries=2)
    for i in range(3):
        for _ in range(2):
            cache.put(bytes([i]), b"\x00" * 40, cache.generation)
    assert len(cache) == 2 and cache.get(bytes([0]), 1) is None


def test_one_off_answers_are_not_admitted():
    cache = ResponseCache(max_entries=4)
    for i in range(100):  # a scan: each identifier once
        cache.put(bytes([i]), b"\x00" * 40, cache.generation)
    assert len(cache) == 0
