"""The MQTT session of the ingestion: persistent, QoS 1, acknowledged after the commit.

paho-mqtt runs the connection in its own thread (``loop_start``: reconnects by itself);
every message is handed to this process's event loop, registered there, answered, and only
then acknowledged to the broker (``manual_ack``). The session is MQTT 5 with ``clean_start``
False and a session expiry, so what the broker delivered and we did not acknowledge (a
crash, a kill -9, a restart) is delivered again to the next process with our client id; the
registration is idempotent (``register.py``), so the redelivered copy is answered as success.

A rejected message is answered on the reply topic and kept on the dead-letter topic. A
message is acknowledged only once the broker took its answers (``AcksAfterAnswers``), so a
crash in between answers it again rather than losing the reply or the dead letter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from idnode.ingest.messages import Outcome, dead_letter
from idnode.ingest.register import Registrar
from idnode.ingest.routes import IngestSettings, Route

log = logging.getLogger("idnode.ingest")
KEEPALIVE = 30
PUBLISH_WAIT = 10.0  # seconds to wait for the broker to take a reply or a dead letter
RETRY_DELAY = 1.0  # after an unexpected failure (the store down): the message waits


class AcksAfterAnswers:
    """Acknowledges a delivered message once the broker took every answer published to it.

    Why not ack right after ``publish``: paho sends our PUBACK at once but holds a QoS 1
    publish back while ``max_inflight_messages`` others await theirs, so a crash lost the
    answers of messages the broker had already forgotten (7 of 500 replies missing after
    ``kill -9`` once registration got faster). Why not wait for each publish: one round
    trip per message cut the ingestion from hundreds of registrations a second to 23.

    ``published`` runs on paho's thread and may see a publish before ``after`` names it
    (the broker answers fast); the lock is never held while calling into paho.
    """

    def __init__(self, ack: Callable[[int], None]) -> None:
        self._ack = ack
        self._lock = threading.Lock()
        self._waiting: dict[int, list[int]] = {}  # publish mid -> [answers left, message mid]
        self._early: set[int] = set()

    @property
    def outstanding(self) -> int:
        return len(self._waiting)

    def after(self, publish_mids: list[int], message_mid: int) -> None:
        with self._lock:
            entry = [0, message_mid]
            for mid in publish_mids:
                if mid in self._early:
                    self._early.discard(mid)
                else:
                    entry[0] += 1
                    self._waiting[mid] = entry
            done = entry[0] == 0
        if done:
            self._ack(message_mid)

    def published(self, publish_mid: int) -> None:
        with self._lock:
            entry = self._waiting.pop(publish_mid, None)
            if entry is None:
                self._early.add(publish_mid)
                return
            entry[0] -= 1
            done = entry[0] == 0
        if done:
            self._ack(entry[1])


@dataclass(frozen=True)
class Delivery:
    route: Route
    topic: str
    payload: bytes
    mid: int
    response_topic: str | None
    correlation: bytes | None


class MqttIngest:
    """One persistent session; ``start`` subscribes, ``close`` finishes the message in hand."""

    def __init__(self, settings: IngestSettings, registrar: Registrar) -> None:
        self.settings = settings
        self.registrar = registrar
        self.routes = {r.topic: r for r in settings.routes}
        self.subscribed = asyncio.Event()  # set once the broker confirmed our subscriptions
        self.counts = {"registered": 0, "duplicate": 0, "rejected": 0}
        self._queue: asyncio.Queue[Delivery | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._acks = AcksAfterAnswers(lambda mid: self._client.ack(mid, 1))

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Check every route against the registry, then connect (in the background: a broker
        that is down is retried, and the node serves meanwhile)."""
        for route in self.settings.routes:
            await self.registrar.check_route(route)
        self._loop = asyncio.get_running_loop()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry
        props.ReceiveMaximum = self.settings.receive_maximum
        s = self.settings
        self._client.connect_async(
            s.host, s.port, keepalive=KEEPALIVE, clean_start=False, properties=props
        )
        self._client.loop_start()
        self._task = asyncio.create_task(self._consume(), name="mqtt-ingest")

    async def close(self) -> None:
        """Finish the message being written, leave the rest with the broker, disconnect."""
        if self._task is not None:
            self._queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), timeout=10)
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(BaseException):
                    await self._task
        for _ in range(int(PUBLISH_WAIT / 0.05)):  # the broker takes the last answers
            if not self._acks.outstanding:
                break
            await asyncio.sleep(0.05)
        self._client.disconnect()  # after our last PUBACK, in the same outgoing queue
        await asyncio.get_running_loop().run_in_executor(None, self._client.loop_stop)

    # -- paho's thread --------------------------------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT connection refused", extra={"reason": str(reason_code)})
            return
        log.info("MQTT connected", extra={"session_present": flags.session_present})
        client.subscribe([(topic, 1) for topic in self.routes])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("MQTT subscription refused", extra={"reasons": failed})
        elif self._loop is not None:
            self._loop.call_soon_threadsafe(self.subscribed.set)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        log.info("MQTT disconnected", extra={"reason": str(reason_code)})

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acks.published(mid)

    def _on_message(self, client, userdata, message) -> None:
        route = self.routes.get(message.topic)
        if route is None or self._loop is None:  # a subscription an older configuration left
            log.warning("MQTT message on an unconfigured topic dropped",
                        extra={"topic": message.topic})  # fmt: skip
            client.ack(message.mid, message.qos)
            return
        props = message.properties
        delivery = Delivery(
            route,
            message.topic,
            bytes(message.payload),
            message.mid,
            getattr(props, "ResponseTopic", None),
            getattr(props, "CorrelationData", None),
        )
        self._loop.call_soon_threadsafe(self._queue.put_nowait, delivery)

    # -- this process's event loop ----------------------------------------------------------------
    async def _consume(self) -> None:
        while (delivery := await self._queue.get()) is not None:
            while True:
                try:
                    await self._process(delivery)
                    break
                except Exception:  # not the message's fault: keep it and try again
                    log.exception("ingesting a message failed; retrying")
                    await asyncio.sleep(RETRY_DELAY)

    async def _process(self, d: Delivery) -> None:
        outcome = await self.registrar.handle(d.route, d.payload)
        reply_props = None
        if d.correlation is not None:
            reply_props = Properties(PacketTypes.PUBLISH)
            reply_props.CorrelationData = d.correlation
        reply_topic = d.response_topic or d.route.reply_topic
        reply = outcome.reply()
        answers = [self._client.publish(reply_topic, reply, qos=1, properties=reply_props)]
        if not outcome.registered:
            letter = dead_letter(d.topic, d.payload, outcome)
            answers.append(self._client.publish(self.settings.dead_letter_topic, letter, qos=1))
        self._count(outcome)
        # the write committed (or was refused); the broker forgets the message once it holds
        # every answer to it, so a crash before then delivers the message again
        self._acks.after([a.mid for a in answers], d.mid)

    def _count(self, outcome: Outcome) -> None:
        key = "rejected" if not outcome.registered else "duplicate" if outcome.duplicate else (
            "registered")  # fmt: skip
        self.counts[key] += 1
