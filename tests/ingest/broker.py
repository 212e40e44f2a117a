"""The test side of the broker: a line that publishes, a watcher that collects, both real
paho-mqtt clients of the local Mosquitto (127.0.0.1:1883)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HOST, PORT = "127.0.0.1", 1883
BOUND = 60.0  # seconds: only turns what never happens into a failure


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:10]}"


def _client(client_id: str = "") -> paho.Client:
    return paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or unique("t"),
                       protocol=paho.MQTTv5)  # fmt: skip


class Watcher:
    """Subscribes to ``topics`` (QoS 1) and keeps every message's decoded JSON."""

    def __init__(self, *topics: str) -> None:
        self.messages: dict[str, list[dict]] = {t: [] for t in topics}
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = _client()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_connect = lambda c, *a: c.subscribe([(t, 1) for t in topics])
        self.client.connect(HOST, PORT)
        self.client.loop_start()
        if not self._ready.wait(BOUND):
            raise AssertionError("watcher never subscribed")

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages[message.topic].append(orjson.loads(message.payload))

    def on(self, topic: str) -> list[dict]:
        with self._lock:
            return list(self.messages[topic])

    async def wait(self, topic: str, count: int) -> list[dict]:
        deadline = time.monotonic() + BOUND
        while len(self.on(topic)) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.on(topic))} of {count} messages on {topic}")
            await asyncio.sleep(0.02)
        return self.on(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish(topic: str, payloads: list[bytes]) -> None:
    """Publish at QoS 1 and return once the broker has taken every one."""
    c = _client()
    c.connect(HOST, PORT)
    c.loop_start()
    try:
        infos = [c.publish(topic, p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(BOUND)
            assert info.is_published()
    finally:
        c.disconnect()
        c.loop_stop()


def registration(suffix: str, message_id: str = "", **over: str) -> bytes:
    fields = {"PART_NUMBER": "BP-1", "PART_NAME": "Brake pad", "MODEL": "X1", "BATCH": "B1",
              "PRODUCTION_DATE": "2026-11-02", "MANUFACTURER": "Fujian Auto Parts"}  # fmt: skip
    fields.update(over)
    return orjson.dumps({"id": message_id or suffix, "suffix": suffix, "fields": fields})


def unacknowledged(client_id: str, topic: str) -> list[bytes]:
    """What the broker still holds for the session ``client_id`` on ``topic``: resume the
    session, publish a marker behind it, and keep what arrives before the marker (a resumed
    session gets its unacknowledged messages first). The session is then ended."""
    got: list[bytes] = []
    done = threading.Event()
    marker = unique("marker").encode()
    c = _client(client_id)
    c.manual_ack_set(True)

    def on_message(client, userdata, message) -> None:
        client.ack(message.mid, message.qos)
        if message.payload == marker:
            done.set()
        elif not done.is_set():
            got.append(bytes(message.payload))

    c.on_message = on_message
    c.on_subscribe = lambda client, *a: client.publish(topic, marker, qos=1)
    c.on_connect = lambda client, *a: client.subscribe(topic, qos=1)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0  # the session ends with this connection
    c.connect(HOST, PORT, clean_start=False, properties=props)
    c.loop_start()
    try:
        if not done.wait(BOUND):
            raise AssertionError("the marker never came back")
    finally:
        c.disconnect()
        c.loop_stop()
    return got


def forget_session(client_id: str) -> None:
    """End the broker's persistent session ``client_id`` (a test's leftovers)."""
    c = _client(client_id)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 0
    c.connect(HOST, PORT, clean_start=True, properties=props)
    c.disconnect()


def open_session(client_id: str, topic: str, expiry: int = 3600) -> None:
    """Create the persistent session ``client_id`` subscribed to ``topic`` (QoS 1), as an
    operator does before a line's first message: the broker keeps what is published from now
    on, whenever the node first connects."""
    ready = threading.Event()
    c = _client(client_id)
    c.on_connect = lambda client, *a: client.subscribe(topic, qos=1)
    c.on_subscribe = lambda *a: ready.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = expiry
    c.connect(HOST, PORT, clean_start=False, properties=props)
    c.loop_start()
    try:
        if not ready.wait(BOUND):
            raise AssertionError("the session's subscription was never confirmed")
    finally:
        c.disconnect()
        c.loop_stop()
