"""A message is acknowledged only once the broker took every answer to it (issue 16 follow-up:
``kill -9`` lost replies when the ack went out before paho had sent the reply)."""

from __future__ import annotations

from idnode.ingest.mqtt import AcksAfterAnswers


def make() -> tuple[AcksAfterAnswers, list[int]]:
    acked: list[int] = []
    return AcksAfterAnswers(acked.append), acked


def test_the_ack_waits_for_the_reply():
    acks, acked = make()
    acks.after([7], 100)
    assert acked == [] and acks.outstanding == 1
    acks.published(7)
    assert acked == [100] and acks.outstanding == 0


def test_a_rejected_message_waits_for_the_reply_and_the_dead_letter():
    acks, acked = make()
    acks.after([8, 9], 101)
    acks.published(9)
    assert acked == []
    acks.published(8)
    assert acked == [101]


def test_a_broker_faster_than_the_bookkeeping():
    acks, acked = make()
    acks.published(10)  # paho's thread saw the PUBACK before ``after`` named the publish
    acks.after([10, 11], 102)
    assert acked == []
    acks.published(11)
    assert acked == [102]
    acks.published(12)
    acks.after([12], 103)
    assert acked == [102, 103] and acks.outstanding == 0


def test_a_reused_publish_id_is_not_taken_for_an_early_answer():
    acks, acked = make()
    acks.after([5, 6], 1)
    acks.published(5)
    acks.published(6)
    acks.after([5], 2)  # the id came round again: this publish is not answered yet
    assert acked == [1]
    acks.published(5)
    assert acked == [1, 2]
