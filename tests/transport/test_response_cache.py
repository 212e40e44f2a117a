"""The encoded-response cache: what it shares, what it refuses, and when it forgets."""

from __future__ import annotations

from idnode.app import close_node, open_node
from idnode.bootstrap import init_node
from idnode.client.resolve import resolution_request, siteinfo_request
from idnode.codes import OpCode, OpFlag, ResponseCode
from idnode.config import load_config
from idnode.runtime import system
from idnode.transport.response_cache import ResponseCache, requested_handle
from idnode.transport.wire_handler import WireHandler
from idnode.wire.envelope import ENVELOPE_SIZE, Envelope, decode_envelope, encode_envelope
from idnode.wire.header import Header, decode_header
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
    assert cache.get(key, 99) is None
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


def test_a_full_cache_admits_only_answers_computed_twice():
    cache = ResponseCache(max_entries=4)
    for i in range(4):  # room: kept at once
        cache.put(bytes([i]), b"\x00" * 40, cache.generation)
    assert len(cache) == 4
    for i in range(4, 100):  # then a scan: each identifier once evicts nothing
        cache.put(bytes([i]), b"\x00" * 40, cache.generation)
    assert [cache.peek(bytes([i])) is not None for i in range(4)] == [True] * 4
    for _ in range(2):  # a new hot one is admitted on its second computation
        cache.put(b"hot", b"\x00" * 40, cache.generation)
    assert cache.peek(b"hot") is not None and len(cache) == 4


def test_requested_handle_is_read_from_the_request_body():
    _, payload = split(resolution_request("20.500.1/Ünïcode", types=("URL",)))
    assert requested_handle(payload) == "20.500.1/Ünïcode"
    assert requested_handle(payload[:10]) == ""


async def test_lifecycle_changes_and_negative_answers_through_a_real_node(tmp_path):
    """Found and not-found answers are cached; a suspension or reactivation clears them."""
    config = await init_node(
        tmp_path / "n", name="n", prefixes=["20.500.123"], demo=True, runtime=system()
    )
    node = await open_node(load_config(config.directory, env={}), runtime=system())
    cache = ResponseCache()
    node.registry.states.listeners.append(cache.invalidate)  # what `serve` does
    handler = WireHandler(node, cache=cache)

    async def code(handle: str, peer: str = "127.0.0.1:1") -> tuple[int, bytes]:
        env, payload = split(resolution_request(handle))
        raw = await handler.answer(env, payload, peer)
        return decode_header(raw[ENVELOPE_SIZE:]).response_code, raw[ENVELOPE_SIZE:]

    try:
        for n in range(3):  # three clients: each counts once per identifier and window
            missing = await code("20.500.123/never-made", f"192.0.2.{n}:1")
            found = await code("20.500.123/demo-1", f"192.0.2.{n}:1")
        assert missing[0] == ResponseCode.HANDLE_NOT_FOUND and found[0] == ResponseCode.SUCCESS
        assert cache.stats.hits == 4 and len(cache) == 2  # all but the first were hits
        resolutions = node.registry.stats.pending["20.500.123"]
        assert resolutions == 6  # hits are counted by the gate like any resolution
        await code("20.500.123/demo-1", "192.0.2.0:2")  # the same client again: not counted
        assert node.registry.stats.pending["20.500.123"] == 6

        await node.registry.lifecycle.set_state(None, "20.500.123/demo-1", "suspended", "recall")
        assert len(cache) == 0
        for _ in range(3):
            gone = await code("20.500.123/demo-1")
            assert gone[0] == ResponseCode.HANDLE_NOT_FOUND and b"recall" in gone[1]

        await node.registry.lifecycle.set_state(None, "20.500.123/demo-1", "active", "ok")
        for _ in range(3):  # cached again, and never the stale tombstone
            again = await code("20.500.123/demo-1")
            assert again[0] == ResponseCode.SUCCESS
    finally:
        await close_node(node)


def test_a_key_spells_the_request_it_was_made_of():
    """The full path keys the decoded request encoded again; the UDP hot path looks raw
    bytes up: for a request spelt as we encode it, the same key. A client that suggests
    no version (two zero bits) spells it otherwise: another key, never another request's."""
    keys = set()
    for version, suggest in (((2, 1), (0, 0)), ((2, 1), (2, 11)), ((2, 10), (2, 10))):
        for msg in (
            resolution_request("20.500.1/x", request_id=5),
            resolution_request("20.500.1/x", types=("URL", "EMAIL"), indexes=(1, 7)),
            resolution_request("20.500.1/x", public_only=False),
        ):
            raw = bytearray(encode_message(msg))
            raw[0:2] = bytes(version)
            raw[2] = (raw[2] & ~0x03) | suggest[0]
            raw[3] = suggest[1]
            raw = bytes(raw)
            decoded = decode_envelope(raw[:ENVELOPE_SIZE])
            key = ResponseCache.key(decoded, raw[20:])
            again = encode_envelope(decoded) + raw[20:]
            assert key == ResponseCache.datagram_key(again)
            assert decode_envelope(again) == decoded  # the key's bytes are the same request
            assert (key == ResponseCache.datagram_key(raw)) == (suggest != (0, 0))
            keys.add(key)
    assert len(keys) == 9  # nine requests, nine keys


async def test_what_is_not_shareable_finds_no_cached_answer(tmp_path):
    """The hot path looks a datagram up unchecked: a request that differs from the cached
    one in its session, a piece number, a flag, its length or its credential finds nothing,
    and the full path answers it."""
    config = await init_node(
        tmp_path / "n", name="n", prefixes=["20.500.123"], demo=True, runtime=system()
    )
    node = await open_node(load_config(config.directory, env={}), runtime=system())
    handler = WireHandler(node, cache=ResponseCache())
    try:
        raw = encode_message(resolution_request("20.500.123/demo-1"))
        env = decode_envelope(raw[:ENVELOPE_SIZE])
        key = ResponseCache.datagram_key(raw)
        assert await handler.answer(env, raw[ENVELOPE_SIZE:], "127.0.0.1:1", datagram_key=key)
        assert handler.answer_datagram_cached(raw, "127.0.0.1") is not None  # now cached
        with_session = raw[:4] + b"\x00\x00\x00\x07" + raw[8:]
        second_piece = raw[:12] + b"\x00\x00\x00\x01" + raw[16:]
        truncated = raw[:2] + bytes([raw[2] | 0x20]) + raw[3:]
        encrypted = raw[:2] + bytes([raw[2] | 0x40]) + raw[3:]
        credential = raw[:-4] + b"\x00\x00\x00\x09" + b"x" * 9
        for bad in (with_session, second_piece, truncated, encrypted, credential,
                    raw[:-1], raw + b"\x00", raw[:30]):  # fmt: skip
            assert handler.answer_datagram_cached(bad, "127.0.0.1") is None
        assert handler.answer_datagram_cached(encode_message(siteinfo_request()), "h") is None
    finally:
        await close_node(node)
