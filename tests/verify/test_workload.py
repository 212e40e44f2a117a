"""Mix parsing, key sets, the request stream, and the fast encoder pinned to the codec."""

from __future__ import annotations

from collections import Counter

import pytest

from idnode.client.resolve import resolution_request
from idnode.verify.checks import check_http, check_wire
from idnode.verify.results import CODE, MALFORMED, OK, WRONG_TYPE
from idnode.verify.targets import TargetError, check_allowed, parse_target
from idnode.verify.workload import HIT, MISS, TYPED, KeySet, Op, Plan, encode_resolution, parse_mix
from idnode.wire.message import encode_message


@pytest.mark.parametrize(
    ("handle", "type_", "rid"),
    [("20.500.1/item-0", None, 1), ("20.500.1/ünï", "URL", 0x7FFFFFFF), ("0.NA/x", "HS_SITE", 5)],
)
def test_fast_encoder_matches_the_codec(handle, type_, rid):
    types = (type_,) if type_ else ()
    expected = encode_message(resolution_request(handle, types=types, request_id=rid))
    assert encode_resolution(handle, type_, rid) == expected


def test_parse_mix():
    assert parse_mix("hit=80,miss=15,typed=5") == {HIT: 80, MISS: 15, TYPED: 5}
    assert parse_mix("miss=1") == {HIT: 0, MISS: 1, TYPED: 0}
    for bad in ("hit", "hot=1", "hit=x", "hit=0", "hit=-1,miss=2"):
        with pytest.raises(ValueError):
            parse_mix(bad)


def test_plan_follows_the_mix_and_the_key_set(tmp_path):
    keys = KeySet.generated("20.500.9", 50)
    plan = Plan(keys, parse_mix("hit=70,miss=20,typed=10"), "URL", seed=3)
    ops = [plan.next() for _ in range(10_000)]
    kinds = Counter(op.kind for op in ops)
    assert 6600 < kinds[HIT] < 7400 and 1700 < kinds[MISS] < 2300 and 800 < kinds[TYPED] < 1200
    hits = {op.handle for op in ops if op.kind != MISS}
    assert hits <= {f"20.500.9/item-{i}" for i in range(50)}
    misses = [op.handle for op in ops if op.kind == MISS]
    assert len(set(misses)) == len(misses) and all(m.startswith("20.500.9/") for m in misses)
    assert all(op.type == "URL" for op in ops if op.kind == TYPED)
    again = Plan(keys, parse_mix("hit=70,miss=20,typed=10"), "URL", seed=3)
    assert [again.next() for _ in range(100)] == ops[:100]  # seeded: reproducible

    f = tmp_path / "keys.txt"
    f.write_text("# comment\n20.500.5/a\n\n20.500.5/b\n")
    ks = KeySet.from_file(f)
    assert (ks.prefix, ks.count, ks.key(1)) == ("20.500.5", 2, "20.500.5/b")


def test_http_checks():
    hit, miss, typed = Op(HIT, "p/a"), Op(MISS, "p/b"), Op(TYPED, "p/a", "URL")
    assert check_http(hit, 200, b'{"responseCode":1,"handle":"p/a","values":[]}')[0] == OK
    assert check_http(miss, 404, b'{"responseCode":100,"handle":"p/b"}')[0] == OK
    assert check_http(miss, 200, b'{"responseCode":1}')[0] == CODE
    assert check_http(hit, 200, b"not json")[0] == MALFORMED
    body = b'{"responseCode":1,"values":[{"type":"URL"},{"type":"DESC"}]}'
    assert check_http(typed, 200, body)[0] == WRONG_TYPE
    assert check_http(typed, 200, b'{"responseCode":1,"values":[{"type":"URL"}]}')[0] == OK


def test_wire_check_of_a_short_answer():
    assert check_wire(Op(HIT, "p/a"), b"\0" * 20, b"\0" * 10)[0] == MALFORMED


def test_targets():
    assert parse_target("127.0.0.1:2641", "udp") == ("127.0.0.1", 2641)
    assert parse_target("[::1]:80", "tcp") == ("::1", 80)
    assert parse_target("http://localhost:8000/x", "http") == ("localhost", 8000)
    for bad in ("nohost", "https://127.0.0.1:1", ":80"):
        with pytest.raises(TargetError):
            parse_target(bad, "http")
    check_allowed("127.0.0.1", False)
    check_allowed("localhost", False)
    with pytest.raises(TargetError):
        check_allowed("192.0.2.1", False)  # TEST-NET-1: never loopback
    check_allowed("192.0.2.1", True)
