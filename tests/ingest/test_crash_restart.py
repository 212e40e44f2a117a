"""A real ``idnode serve`` killed with SIGKILL mid-stream and started again: every published
message is registered exactly once (QoS 1, persistent session, ack after commit)."""

from __future__ import annotations

import asyncio
import subprocess

from idnode.app import open_node
from idnode.config import load_config
from idnode.runtime import ManualClock, Runtime, SeededRandom
from tests.conftest import IDNODE, free_port, serve_node, stop_node
from tests.ingest.broker import (
    Watcher,
    forget_session,
    open_session,
    publish,
    registration,
    unacknowledged,
    unique,
)
from tests.registry.conftest import CONTACT, NOV_2_2026, VALID_CODE

PREFIX = "88.123.4567"
COUNT = 500


async def _prepare(directory) -> None:
    """The operator's part: an approved organisation, its prefix, the line's account."""
    node = await open_node(
        load_config(directory), runtime=Runtime(ManualClock(NOV_2_2026), SeededRandom(1))
    )
    try:
        reg = node.registry
        org = await reg.organisations.apply("t", "Fujian Auto Parts Co., Ltd.", VALID_CODE, CONTACT)
        await reg.organisations.approve("t", org["id"])
        await reg.prefixes.apply("t", PREFIX, org["id"], "auto-parts")
        await reg.prefixes.approve("t", PREFIX)
        await reg.prefixes.allocate("t", PREFIX)
        await reg.accounts.create("t", "line-1", "registrar", org["id"])
    finally:
        await node.close()


async def _stored(directory) -> dict[str, int]:
    node = await open_node(
        load_config(directory), runtime=Runtime(ManualClock(NOV_2_2026), SeededRandom(2))
    )
    try:
        store, like = node.store, f"{PREFIX}/%"

        async def count(sql: str, *args: object) -> int:
            row = await store.query_one(sql, *args)
            return int(next(iter(row.values())) or 0)

        present = 0
        for i in range(COUNT):
            present += await store.get_handle(f"{PREFIX}/P{i:05d}") is not None
        return {
            "identifiers": present,
            "audit": await count("SELECT count(*) AS n FROM {s}.audit WHERE action = ?"
                                 " AND target LIKE ?", "handle.create", like),
            "versions": await count("SELECT count(*) AS n FROM {s}.versions WHERE action = ?"
                                    " AND handle LIKE ?", "create", like),
            "registrations": await count("SELECT sum(registrations) AS n FROM {s}.stats_daily"
                                         " WHERE prefix = ?", PREFIX),
        }  # fmt: skip
    finally:
        await node.close()


def test_kill_9_mid_stream_then_restart_registers_every_message_once(tmp_path):
    directory = tmp_path / "line-node"
    port, http_port = free_port(), free_port()
    subprocess.run(
        [*IDNODE, "init", str(directory), "--name", "line-node", "--prefix", "88.123",
         "--udp-port", str(port), "--tcp-port", str(port), "--http-port", str(http_port)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    asyncio.run(_prepare(directory))
    topic, client_id = unique("factory/crash/parts"), unique("idnode-crash")
    env = {
        "IDNODE_INGEST_MQTT_URL": "mqtt://127.0.0.1:1883",
        "IDNODE_INGEST_CLIENT_ID": client_id,
        "IDNODE_INGEST_TOPICS": f"{topic} prefix={PREFIX} template=auto-parts account=line-1",
        "IDNODE_INGEST_DEAD_LETTER_TOPIC": topic + "/dead",
    }
    open_session(client_id, topic)
    watcher = Watcher(topic + "/reply", topic + "/dead")
    node = serve_node(directory, port, http_port, "88.123", env=env)
    try:
        publish(topic, [registration(f"P{i:05d}", f"m{i}") for i in range(COUNT)])

        async def some_replies() -> int:
            return len(await watcher.wait(topic + "/reply", 20))

        asyncio.run(some_replies())
        node.process.kill()  # SIGKILL: no shutdown, whatever was in hand is lost in-process
        node.process.communicate(timeout=30)
        at_kill = len(watcher.on(topic + "/reply"))
        assert at_kill < COUNT, "the stream ended before the kill: raise COUNT"

        node = serve_node(directory, port, http_port, "88.123", env=env)

        async def all_answered() -> list[dict]:
            while True:
                replies = await watcher.wait(topic + "/reply", COUNT)
                if len({r["handle"] for r in replies}) == COUNT:
                    return replies
                await watcher.wait(topic + "/reply", len(replies) + 1)

        replies = asyncio.run(all_answered())
    finally:
        stop_node(node)
        watcher.close()
    assert node.process.returncode == 0
    assert {r["status"] for r in replies} == {"registered"}
    print(f"{at_kill} answers before the kill, {len(replies)} in all for {COUNT} messages")
    assert watcher.on(topic + "/dead") == []
    assert asyncio.run(_stored(directory)) == {
        "identifiers": COUNT, "audit": COUNT, "versions": COUNT, "registrations": COUNT,
    }  # fmt: skip
    # the clean shutdown left nothing unacknowledged with the broker
    assert unacknowledged(client_id, topic) == []
    forget_session(client_id)
