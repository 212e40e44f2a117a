"""The replication messages and streams in HSJ's layouts (docs/replication.md)."""

from __future__ import annotations

import struct

import pytest

from idnode.codes import OpCode, ResponseCode
from idnode.crypto.keys import generate_key, sign, verify
from idnode.errors import MalformedMessage
from idnode.model import HandleValue
from idnode.wire import bodies
from idnode.wire import replication as rw
from idnode.wire.values import encode_value

KEY = generate_key("rsa", 1024)
VALUE = HandleValue(1, "URL", b"https://example.com/a")


def _verify(key=KEY):
    return lambda signature, data, hash_id: verify(key.public_key(), signature, data, "SHA256")


def _writer():
    return rw.StreamWriter(lambda data: sign(KEY, data, "SHA256"))


def test_retrieve_txn_request_is_hsj_2_9_layout():
    body = bodies.RetrieveTxnRequest(0x0102, 0x0304, 1, 3, 2)
    data = bodies.encode_body(body)
    # flag byte 0, long last txn id, long last query date, byte hash, int servers, int index
    assert data == b"\x00" + struct.pack(">qqbii", 0x0102, 0x0304, 1, 3, 2)
    assert bodies.decode_body(OpCode.RETRIEVE_TXN_LOG, 0, data) == body


def test_retrieve_txn_request_before_2_9_has_no_flag_byte():
    old = struct.pack(">qqbii", 7, 8, 0, 1, 0)
    body = bodies.decode_body(OpCode.RETRIEVE_TXN_LOG, 0, old)
    assert (body.last_txn_id, body.last_query_date, body.flagged) == (7, 8, False)
    assert bodies.encode_body(body) == old


def test_retrieve_txn_request_of_several_sources_is_refused_clearly():
    with pytest.raises(MalformedMessage, match="several sources"):
        bodies.decode_body(OpCode.RETRIEVE_TXN_LOG, 0, b"\x01" + b"\x00" * 30)


def test_next_txn_id_and_dump_request_layouts():
    assert bodies.encode_body(bodies.NextTxnIdResponse(5 << 40 | 9)) == struct.pack(
        ">q", 5 << 40 | 9
    )
    got = bodies.decode_body(OpCode.GET_NEXT_TXN_ID, ResponseCode.SUCCESS, struct.pack(">q", 42))
    assert got == bodies.NextTxnIdResponse(42)
    plain = bodies.DumpHandlesRequest(0, 1, 0)
    assert bodies.encode_body(plain) == struct.pack(">bii", 0, 1, 0)
    resumed = bodies.DumpHandlesRequest(2, 4, 1, b"20.500/x", 3)
    data = bodies.encode_body(resumed)
    assert data == struct.pack(">bii", 2, 4, 1) + struct.pack(">i", 8) + b"20.500/x" + b"\0\0\0\3"
    assert bodies.decode_body(OpCode.DUMP_HANDLES, 0, data) == resumed


def test_txn_stream_layout_and_round_trip_in_any_pieces():
    w = _writer()
    records = [
        rw.TxnRecord(rw.txn_id(1, 5), "20.500/a", rw.ACTION_CREATE, 1000, (VALUE,)),
        rw.TxnRecord(rw.txn_id(1, 6), "20.500/b", rw.ACTION_DELETE, 2000),
        rw.TxnRecord(rw.txn_id(1, 7), "0.NA/20.500", rw.ACTION_HOME_NA, 3000),
    ]
    data = w.head() + w.txn_head(rw.SENDING_TRANSACTIONS)
    data += b"".join(w.txn(r) for r in records) + w.txn_end(4000)
    # head: stream type 0 (signed), then the hash id as an int-prefixed string
    assert data[:4] == b"\0\0\0\0" and data[4:15] == b"\0\0\0\x07SHA-256"
    # the first block: format 1, status 2, then its signature's length
    assert data[15:23] == struct.pack(">ii", 1, 2)
    # the create record's values are int-prefixed HSJ value encodings
    assert struct.pack(">i", len(encode_value(VALUE))) + encode_value(VALUE) in data
    for step in (1, 7, len(data)):
        parser = rw.StreamParser(dump=False, verify=_verify())
        events = []
        for i in range(0, len(data), step):
            events += parser.feed(data[i : i + step])
        assert events == [rw.TxnHead(rw.SENDING_TRANSACTIONS), *records, rw.TxnEnd(4000)]
        assert parser.done


def test_dump_stream_round_trip():
    w = _writer()
    data = w.head() + w.dump_head() + w.dump_info(9, rw.txn_id(0, 3))
    data += w.dump_handle("20.500/a", [VALUE]) + w.dump_prefix("0.NA/20.500") + w.dump_done()
    assert data.endswith(b"\xff")  # HSJ ABSOLUTELY_DONE_RECORD (-1), unsigned
    parser = rw.StreamParser(dump=True, verify=_verify())
    assert parser.feed(data) == [
        rw.DumpInfo(9, 3),
        rw.DumpHandle("20.500/a", (VALUE,)),
        rw.DumpPrefix("0.NA/20.500"),
        rw.DumpDone(),
    ]


def test_a_changed_byte_or_another_key_fails_the_signature():
    w = _writer()
    record = rw.TxnRecord(1, "20.500/a", rw.ACTION_CREATE, 1, (VALUE,))
    data = bytearray(w.head() + w.txn_head(2) + w.txn(record) + w.txn_end(1))
    at = data.index(b"example")
    data[at] ^= 1
    with pytest.raises(MalformedMessage, match="invalid signature"):
        rw.StreamParser(dump=False, verify=_verify()).feed(bytes(data))
    other = generate_key("rsa", 1024)
    with pytest.raises(MalformedMessage, match="invalid signature"):
        rw.StreamParser(dump=False, verify=_verify(other)).feed(w.head() + w.txn_head(2))


def test_an_unsigned_stream_is_refused_when_a_key_is_expected():
    unsigned = rw.StreamWriter(None)
    data = unsigned.head() + unsigned.txn_head(2) + unsigned.txn_end(1)
    with pytest.raises(MalformedMessage, match="unsigned"):
        rw.StreamParser(dump=False, verify=_verify()).feed(data)
    assert rw.StreamParser(dump=False, verify=None).feed(data) == [rw.TxnHead(2), rw.TxnEnd(1)]


def test_bad_records_are_malformed_not_crashes():
    w = _writer()
    with pytest.raises(MalformedMessage, match="record type"):
        rw.StreamParser(dump=False, verify=_verify()).feed(
            w.head() + w.txn_head(2) + w.block(b"\x09")
        )
    huge = w.head() + w.txn_head(2) + b"\x01" + struct.pack(">qi", 1, 1 << 30)
    with pytest.raises(MalformedMessage, match="out of bounds"):
        rw.StreamParser(dump=False, verify=_verify()).feed(huge)


def test_txn_ids_carry_the_epoch():
    assert rw.split_txn_id(rw.txn_id(3, 12345)) == (3, 12345)
    assert rw.txn_id(1, 0) > rw.txn_id(0, (1 << 40) - 1)


def test_a_governance_stream_round_trips_and_refuses_what_is_no_replicated_table():
    """idnode's extension (format 3): pages of changed rows, bytes kept, signed blocks."""
    from idnode.errors import MalformedMessage
    from idnode.store import capture

    changes = [
        ("organisations", (1,), {"id": 1, "legal_name": "A", "state": "approved"}),
        ("versions", (4,), {"id": 4, "record": b"\x00\xffsealed"}),
        ("accounts", (2,), None),
    ]
    signer = rw.StreamWriter(lambda data: b"sig:" + data[:4], rw.HASH_ID)
    data = (
        signer.head()
        + signer.gov_head(False)
        + signer.gov_page(rw.txn_id(1, 9), capture.encode_changes(changes))
        + signer.gov_end(rw.txn_id(1, 9))
    )
    parser = rw.StreamParser(
        dump=False, governance=True, verify=lambda sig, block, _h: sig == b"sig:" + block[:4]
    )
    events = [e for i in range(len(data)) for e in parser.feed(data[i : i + 1])]
    assert parser.done and events[0] == rw.GovHead(full=False)
    assert events[1].position == rw.txn_id(1, 9) and events[2] == rw.GovEnd(rw.txn_id(1, 9))
    assert capture.decode_changes(events[1].changes) == changes
    with pytest.raises(MalformedMessage, match="not a replicated table"):
        capture.decode_changes(b'[["recursive_cache", ["k"], null]]')
    with pytest.raises(MalformedMessage, match="bad columns"):
        capture.upsert("organisations", {"id": 1, "x; DROP TABLE audit": 2})
    tampered = bytearray(data)
    tampered[-30] ^= 1
    with pytest.raises(MalformedMessage):
        rw.StreamParser(dump=False, governance=True, verify=lambda *_: False).feed(bytes(tampered))
