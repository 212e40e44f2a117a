"""Sustained registrations/s from MQTT: a line's backlog drained by the node's ingestion.

Builds a throw-away node (SQLite, in a temp directory), an approved organisation with prefix
88.123.4567 (auto-parts) and a registrar account, opens the ingestion's persistent session at
the local Mosquitto (127.0.0.1:1883), publishes a backlog of registrations at QoS 1, then starts
the ingestion, keeps the backlog topped up to N messages and times it from start to the last
reply. Each message is one registration through
the one write service (template check, history, audit entry, statistics, one transaction),
answered on the reply topic and acknowledged to the broker after its commit. Prints figures;
asserts nothing.

    .venv/bin/python bench/mqtt_ingest.py --count 5000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.ingest.broker

from tests.ingest.broker import (  # noqa: E402
    Watcher,
    forget_session,
    open_session,
    publish,
    registration,
    unique,
)

from idnode.app import open_node  # noqa: E402
from idnode.bootstrap import init_node  # noqa: E402
from idnode.config import IngestSection  # noqa: E402
from idnode.ingest.mqtt import MqttIngest  # noqa: E402
from idnode.ingest.register import Registrar  # noqa: E402
from idnode.ingest.routes import parse_settings  # noqa: E402
from idnode.runtime import system  # noqa: E402

PREFIX = "88.123.4567"
BACKLOG = 800  # messages waiting at the broker; under Mosquitto's max_queued_messages
CONTACT = {"name": "Lin", "phone": "+86 591 0000000", "email": "lin@example.cn"}


async def main(count: int, workdir: Path) -> None:
    cfg = await init_node(workdir / "node", name="bench", prefixes=["88.123"], runtime=system())
    node = await open_node(cfg, runtime=system())
    reg = node.registry
    org = await reg.organisations.apply("bench", "Fujian Auto Parts Co., Ltd.",
                                        "91350100M000100Y43", CONTACT)  # fmt: skip
    await reg.organisations.approve("bench", org["id"])
    await reg.prefixes.apply("bench", PREFIX, org["id"], "auto-parts")
    await reg.prefixes.approve("bench", PREFIX)
    await reg.prefixes.allocate("bench", PREFIX)
    await reg.accounts.create("bench", "line-1", "registrar", org["id"])
    topic, client_id = unique("bench/line1/parts"), unique("idnode-bench")
    settings = parse_settings(
        IngestSection(
            mqtt_url="mqtt://127.0.0.1:1883",
            client_id=client_id,
            topics=[f"{topic} prefix={PREFIX} template=auto-parts account=line-1"],
            dead_letter_topic=topic + "/dead",
        ),
        "bench",
    )
    assert settings is not None
    open_session(client_id, topic)
    watcher = Watcher(topic + "/reply")
    messages = [registration(f"P{i:07d}", f"m{i}", BATCH=f"B{i // 1000}") for i in range(count)]
    # a backlog of BACKLOG messages first (the line ran before the node), then the line keeps
    # it topped up: Mosquitto queues at most max_queued_messages (default 1000) per session
    publish(topic, messages[:BACKLOG])
    ingest = MqttIngest(settings, Registrar(reg))
    t0, cpu0 = time.perf_counter(), os.times()
    await ingest.start()
    sent = BACKLOG
    while sent < count:
        answered = len(watcher.on(topic + "/reply"))
        if sent - answered < BACKLOG // 2:
            publish(topic, messages[sent : sent + BACKLOG // 2])
            sent += BACKLOG // 2
        else:
            await asyncio.sleep(0.01)
    replies = await watcher.wait(topic + "/reply", count) if count else []
    took, cpu1 = time.perf_counter() - t0, os.times()
    await ingest.close()
    watcher.close()
    forget_session(client_id)
    registered = sum(r["status"] == "registered" for r in replies)
    cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    print(
        f"{registered} of {count} registrations from MQTT in {took:.1f} s: "
        f"{registered / took:,.0f} registrations/s (QoS 1, ack after commit, SQLite)"
    )
    print(f"CPU of this process (node + the test's MQTT clients) {cpu:.1f} s; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    await node.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=5000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        asyncio.run(main(a.count, Path(d)))
