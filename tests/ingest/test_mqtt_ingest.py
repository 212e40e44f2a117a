"""MQTT ingestion against the real local Mosquitto: registered and acknowledged, refused with
the reason and dead-lettered, redelivered without being registered twice."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from idnode.config import ConfigError, IngestSection
from idnode.ingest.routes import parse_settings
from idnode.registry.errors import RegistryError
from tests.ingest.broker import BOUND, Watcher, publish, registration, unacknowledged
from tests.ingest.conftest import PREFIX


async def test_valid_messages_are_registered_answered_and_acknowledged(line):
    ingest = line.ingest()
    watcher = Watcher(line.reply)
    audit_before = await line.env.audit_count()
    await ingest.start()
    try:
        await asyncio.wait_for(ingest.subscribed.wait(), BOUND)
        publish(line.topic, [registration(f"P{i:03d}", f"m{i}", BATCH=f"B{i}") for i in range(5)])
        replies = await watcher.wait(line.reply, 5)
    finally:
        await ingest.close()
        watcher.close()
    assert [r["id"] for r in replies] == [f"m{i}" for i in range(5)]  # in order, one each
    assert {r["status"] for r in replies} == {"registered"}
    assert not any(r["duplicate"] for r in replies)
    for i in range(5):
        record = await line.env.node.store.get_handle(f"{PREFIX}/P{i:03d}")
        assert record is not None
        assert {v.type: bytes(v.data) for v in record}["BATCH"] == f"B{i}".encode()
    # the same governance as a REST registration: audit, history and statistics
    assert await line.env.audit_count() == audit_before + 5
    creates = await line.count(
        "SELECT count(*) AS n FROM {s}.audit WHERE action = ? AND actor LIKE ?",
        "handle.create", "%line-1%",
    )  # fmt: skip
    assert creates == 5
    versions = await line.count(
        "SELECT count(*) AS n FROM {s}.versions WHERE action = ? AND handle LIKE ?",
        "create", f"{PREFIX}/%",
    )  # fmt: skip
    assert versions == 5
    await line.env.reg.stats.flush()
    assert await line.count(
        "SELECT sum(registrations) AS n FROM {s}.stats_daily WHERE prefix = ?", PREFIX
    ) == 5  # fmt: skip
    # acknowledged after each commit: the broker holds nothing more for the session
    assert unacknowledged(line.settings.client_id, line.topic) == []


async def test_bad_messages_are_answered_with_the_reason_and_dead_lettered(line):
    ingest = line.ingest()
    watcher = Watcher(line.reply, line.dead)
    audit_before = await line.env.audit_count()
    bad = [
        b"not json",
        registration("P1", "late", PRODUCTION_DATE="2026-13-40"),
        orjson.dumps({"id": "nofields", "suffix": "P2", "fields": {}}),
        registration("P3", "extra", COLOUR="red"),
        orjson.dumps({"id": "other", "handle": "99.1/P4", "fields": {"BATCH": "B"}}),
    ]
    await ingest.start()
    try:
        await asyncio.wait_for(ingest.subscribed.wait(), BOUND)
        publish(line.topic, bad)
        replies = await watcher.wait(line.reply, len(bad))
        dead = await watcher.wait(line.dead, len(bad))
    finally:
        await ingest.close()
        watcher.close()
    assert {r["status"] for r in replies} == {"rejected"}
    by_id = {r["id"]: r["error"] for r in replies}
    assert by_id["late"]["field"] == "PRODUCTION_DATE"
    assert "date" in by_id["late"]["message"]
    assert by_id["nofields"]["field"] == "fields"
    assert by_id["extra"]["field"] == "COLOUR"
    assert by_id["other"]["field"] == "handle"
    assert by_id[""]["message"] == "not a JSON object"
    # the dead letters keep the original bytes and the reason, in order
    assert [d["payload"].encode() for d in dead] == bad
    assert all(d["topic"] == line.topic and d["error"]["message"] for d in dead)
    # nothing was written, and every message was acknowledged
    assert await line.env.audit_count() == audit_before
    assert await line.env.node.store.get_handle(f"{PREFIX}/P1") is None
    assert unacknowledged(line.settings.client_id, line.topic) == []


async def test_a_redelivered_message_is_a_no_op_answered_as_success(line):
    ingest = line.ingest()
    watcher = Watcher(line.reply, line.dead)
    await ingest.start()
    try:
        await asyncio.wait_for(ingest.subscribed.wait(), BOUND)
        same = registration("P7", "m7")
        clash = registration("P7", "m7b", BATCH="B-other")  # same identifier, other fields
        publish(line.topic, [same, same, clash])
        replies = await watcher.wait(line.reply, 3)
        await watcher.wait(line.dead, 1)
    finally:
        await ingest.close()
        watcher.close()
    assert [(r["status"], r.get("duplicate")) for r in replies] == [
        ("registered", False), ("registered", True), ("rejected", None)
    ]  # fmt: skip
    assert "already exists with other fields" in replies[2]["error"]["message"]
    creates = await line.count(
        "SELECT count(*) AS n FROM {s}.audit WHERE action = ? AND target = ?",
        "handle.create", f"{PREFIX}/P7",
    )  # fmt: skip
    assert creates == 1
    assert ingest.counts == {"registered": 1, "duplicate": 1, "rejected": 1}


async def test_a_route_that_cannot_register_stops_the_start(line):
    section = IngestSection(
        mqtt_url="mqtt://127.0.0.1:1883",
        topics=[f"{line.topic} prefix={PREFIX} template=pharmaceuticals account=line-1"],
    )
    wrong_template = line.ingest()
    wrong_template.settings = parse_settings(section, "t")
    with pytest.raises(RegistryError, match="uses template auto-parts"):
        await line.ingest().registrar.check_route(wrong_template.settings.routes[0])
    no_account = parse_settings(
        IngestSection(mqtt_url="mqtt://h", topics=[f"t prefix={PREFIX} template=auto-parts "
                                                   "account=nobody"]), "t")  # fmt: skip
    with pytest.raises(RegistryError, match="no account"):
        await line.ingest().registrar.check_route(no_account.routes[0])


@pytest.mark.parametrize(
    "section, message",
    [
        (IngestSection(mqtt_url="http://h", topics=["a prefix=p template=t account=a"]),
         "expected mqtt://"),
        (IngestSection(mqtt_url="mqtt://h"), "at least one topic"),
        (IngestSection(mqtt_url="mqtt://h", topics=["a/# prefix=p template=t account=a"]),
         "wildcards"),
        (IngestSection(mqtt_url="mqtt://h", topics=["a prefix=p template=t"]), "missing account"),
        (IngestSection(mqtt_url="mqtt://h", topics=["a prefix=p colour=red"]), "colour=red"),
    ],
)  # fmt: skip
def test_bad_ingest_settings_are_refused(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_settings(section, "t")
    assert parse_settings(IngestSection(), "t") is None  # no mqtt_url: no ingestion


async def test_only_worker_0_ingests(line, monkeypatch):
    from dataclasses import replace

    from idnode.ingest.runner import start_ingest

    config = replace(line.env.node.config, ingest=IngestSection(
        mqtt_url="mqtt://127.0.0.1:1883", client_id=line.settings.client_id,
        topics=[f"{line.topic} prefix={PREFIX} template=auto-parts account=line-1"],
    ))  # fmt: skip
    monkeypatch.setenv("IDNODE_WORKER", "1")
    assert await start_ingest(config, line.env.reg) is None
    monkeypatch.setenv("IDNODE_WORKER", "0")
    ingest = await start_ingest(config, line.env.reg)
    assert ingest is not None
    try:
        await asyncio.wait_for(ingest.subscribed.wait(), BOUND)
    finally:
        await ingest.close()
    assert await start_ingest(replace(config, ingest=IngestSection()), line.env.reg) is None
