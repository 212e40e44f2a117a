"""What a production line publishes and what it is answered: JSON, bounded, sans-I/O.

A registration: ``{"id": "line1-000042", "suffix": "P000042", "fields": {"BATCH": "B7", ...}}``
(``id`` optional, echoed in the answer; ``handle`` may replace ``suffix`` if it names the
topic's prefix). Answers go to ``<topic>/reply`` (or the MQTT 5 response topic the publisher
set): ``{"id", "handle", "status": "registered", "duplicate": false}`` or ``{"id", "handle",
"status": "rejected", "error": {"field", "message"}}``; a rejected message is also kept on
the dead-letter topic with its reason.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

MAX_PAYLOAD = 64 * 1024  # one identifier's fields; anything bigger is not a registration
MAX_ID = 200


class BadMessage(ValueError):
    """A payload that is not a registration; ``field`` names what was wrong."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}" if field_name else message)
        self.field = field_name
        self.detail = message


@dataclass(frozen=True)
class Registration:
    message_id: str
    handle: str
    fields: dict[str, str]


@dataclass(frozen=True)
class Outcome:
    """The answer to one message: registered (perhaps already, by an earlier delivery) or
    rejected with the offending field and the reason."""

    message_id: str
    handle: str
    registered: bool
    duplicate: bool = False
    field: str = ""
    message: str = ""

    def reply(self) -> bytes:
        body: dict[str, Any] = {"id": self.message_id, "handle": self.handle}
        if self.registered:
            body |= {"status": "registered", "duplicate": self.duplicate}
        else:
            body |= {"status": "rejected", "error": {"field": self.field, "message": self.message}}
        return orjson.dumps(body)


def parse(payload: bytes, prefix: str) -> Registration:
    """A registration under ``prefix`` from ``payload``, or BadMessage saying why not."""
    if len(payload) > MAX_PAYLOAD:
        raise BadMessage("", f"message of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise BadMessage("", "not a JSON object") from None
    if not isinstance(doc, dict):
        raise BadMessage("", "not a JSON object")
    unknown = sorted(set(doc) - {"id", "suffix", "handle", "fields"})
    if unknown:
        raise BadMessage(unknown[0], "unknown member")
    message_id = doc.get("id", "")
    if not isinstance(message_id, str) or len(message_id) > MAX_ID:
        raise BadMessage("id", f"must be a string of at most {MAX_ID} characters")
    handle = _handle(doc, prefix)
    fields = doc.get("fields")
    if not isinstance(fields, dict) or not fields:
        raise BadMessage("fields", "must be a non-empty object of template fields")
    for name, value in fields.items():
        if not isinstance(value, str):
            raise BadMessage(name, "must be a string")
    return Registration(message_id, handle, {k: v for k, v in fields.items() if v != ""})


def _handle(doc: dict[str, Any], prefix: str) -> str:
    suffix, handle = doc.get("suffix"), doc.get("handle")
    if (suffix is None) == (handle is None):
        raise BadMessage("suffix", "give exactly one of suffix and handle")
    if handle is not None:
        if not isinstance(handle, str) or not handle.lower().startswith(prefix.lower() + "/"):
            raise BadMessage("handle", f"must be an identifier under {prefix}")
        suffix = handle[len(prefix) + 1 :]
    if not isinstance(suffix, str) or not suffix or not suffix.isprintable():
        raise BadMessage("suffix", "must be non-empty printable text")
    return f"{prefix}/{suffix}"


def message_id_of(payload: bytes) -> str:
    """The ``id`` of a payload that failed to parse, if it has one (to echo it back)."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return ""
    value = doc.get("id") if isinstance(doc, dict) else None
    return value if isinstance(value, str) and len(value) <= MAX_ID else ""


def dead_letter(topic: str, payload: bytes, outcome: Outcome) -> bytes:
    """The dead-letter record: where it came from, the original bytes, and why."""
    try:
        original: dict[str, str] = {"payload": payload.decode("utf-8")}
    except UnicodeDecodeError:
        original = {"payload_base64": base64.b64encode(payload).decode("ascii")}
    return orjson.dumps(
        {
            "topic": topic,
            **original,
            "id": outcome.message_id,
            "error": {"field": outcome.field, "message": outcome.message},
        }
    )
