"""``[ingest] topics``: which MQTT topic registers under which prefix, template and account.

One entry per production line: ``"<topic> prefix=<prefix> template=<id> account=<name>"``.
Flat strings, like ``[quotas] overrides``, so ``IDNODE_INGEST_TOPICS`` can override them too.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from idnode.config import ConfigError, IngestSection

KEYS = ("prefix", "template", "account")


@dataclass(frozen=True)
class Route:
    """A subscribed topic and who registers what through it."""

    topic: str
    prefix: str
    template: str
    account: str

    @property
    def reply_topic(self) -> str:
        return self.topic + "/reply"


@dataclass(frozen=True)
class IngestSettings:
    host: str
    port: int
    client_id: str
    routes: tuple[Route, ...]
    dead_letter_topic: str
    session_expiry: int
    receive_maximum: int


def parse_route(entry: str) -> Route:
    """One ``topics`` entry; wildcards are refused so a reply topic can never be ingested."""
    topic, *pairs = entry.split()
    if not pairs:
        raise ConfigError(f"[ingest] topics: {entry!r}: expected '<topic> prefix=... template=..."
                          " account=...'")  # fmt: skip
    if "#" in topic or "+" in topic:
        raise ConfigError(f"[ingest] topics: {topic!r}: wildcards are not accepted")
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in KEYS or not value:
            raise ConfigError(f"[ingest] topics: {entry!r}: unknown or empty setting {pair!r}")
        found[key] = value
    missing = [k for k in KEYS if k not in found]
    if missing:
        raise ConfigError(f"[ingest] topics: {entry!r}: missing {', '.join(missing)}")
    return Route(topic, found["prefix"], found["template"], found["account"])


def parse_settings(section: IngestSection, node_name: str) -> IngestSettings | None:
    """The ingestion a node runs, or None when ``mqtt_url`` is empty."""
    if not section.mqtt_url:
        return None
    url = urlsplit(section.mqtt_url)
    if url.scheme != "mqtt" or not url.hostname:
        raise ConfigError(f"[ingest] mqtt_url: {section.mqtt_url!r}: expected mqtt://host:port")
    routes = tuple(parse_route(e) for e in section.topics)
    if not routes:
        raise ConfigError("[ingest] topics: at least one topic is needed with mqtt_url")
    if len({r.topic for r in routes}) != len(routes):
        raise ConfigError("[ingest] topics: a topic is listed twice")
    if section.receive_maximum < 1 or section.session_expiry < 1:
        raise ConfigError("[ingest] receive_maximum and session_expiry must be positive")
    return IngestSettings(
        host=url.hostname,
        port=url.port or 1883,
        client_id=section.client_id or f"idnode-{node_name}",
        routes=routes,
        dead_letter_topic=section.dead_letter_topic,
        session_expiry=section.session_expiry,
        receive_maximum=section.receive_maximum,
    )
