"""``idnode serve`` with ``[ingest] mqtt_url``: which process ingests, and how it starts.

One MQTT session per node: two sessions with the same client id take it from each other at
the broker, and two different ids would each receive every message. So with ``--workers N``
only worker 0 ingests (``IDNODE_WORKER``, set by ``idnode.workers``; a single-process serve
has none and ingests); the supervisor restarts worker 0 if it dies, and the broker keeps
the session's unacknowledged messages meanwhile.
"""

from __future__ import annotations

import os

from idnode.config import Config
from idnode.ingest.mqtt import MqttIngest
from idnode.ingest.register import Registrar
from idnode.ingest.routes import parse_settings
from idnode.registry.service import Registry


def ingesting_process() -> bool:
    return os.environ.get("IDNODE_WORKER", "0") == "0"


async def start_ingest(config: Config, registry: Registry | None) -> MqttIngest | None:
    """The running ingestion, or None when not configured or not this process's job."""
    settings = parse_settings(config.ingest, config.node.name)
    if settings is None or not ingesting_process():
        return None
    if registry is None:
        raise RuntimeError("[ingest] needs the registry: the node homes no prefix")
    ingest = MqttIngest(settings, Registrar(registry))
    await ingest.start()
    return ingest
