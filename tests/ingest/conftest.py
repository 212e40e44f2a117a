"""An in-process node with an approved prefix (auto-parts), a registrar account for the line,
and an MQTT ingestion on topics no other test uses."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from idnode.config import IngestSection
from idnode.ingest.mqtt import MqttIngest
from idnode.ingest.register import Registrar
from idnode.ingest.routes import IngestSettings, parse_settings
from idnode.runtime import ManualClock, Runtime, SeededRandom
from tests.ingest.broker import forget_session, unique
from tests.registry.conftest import NOV_2_2026, Env, node_env

PREFIX = "88.123.4567"


@dataclass
class Line:
    env: Env
    settings: IngestSettings
    topic: str
    dead: str

    @property
    def reply(self) -> str:
        return self.topic + "/reply"

    def ingest(self) -> MqttIngest:
        return MqttIngest(self.settings, Registrar(self.env.reg))

    async def count(self, sql: str, *args: object) -> int:
        row = await self.env.reg.store.query_one(sql, *args)
        return int(next(iter(row.values())) or 0)


@pytest.fixture
async def line(tmp_path):
    runtime = Runtime(ManualClock(NOV_2_2026), SeededRandom(0))
    async with node_env(tmp_path, runtime) as env:
        org = await env.allocated(PREFIX)
        await env.reg.accounts.create("t", "line-1", "registrar", org["id"])
        topic, dead = unique("factory/line1/parts"), unique("factory/dead")
        section = IngestSection(
            mqtt_url="mqtt://127.0.0.1:1883",
            client_id=unique("idnode-test"),
            topics=[f"{topic} prefix={PREFIX} template=auto-parts account=line-1"],
            dead_letter_topic=dead,
        )
        settings = parse_settings(section, "t")
        assert settings is not None
        yield Line(env, settings, topic, dead)
        forget_session(settings.client_id)
