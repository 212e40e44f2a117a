"""Log lines never carry a credential: the redaction net under every log call (logs.py)."""

from __future__ import annotations

import logging

import orjson

from idnode.logs import JSONFormatter, redact


def test_redact_credentials_and_keys() -> None:
    assert (
        redact("Authorization: Basic MzAwJTNBMC5OQTpzM2NyZXQ=") == "Authorization: Basic [redacted]"
    )
    assert "hunter2" not in redact('secret=hunter2, password: "hunter2"')
    assert "MIIE" not in redact("x -----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----")
    assert redact("a basic idea for 20.500/x") == "a basic idea for 20.500/x"


def test_json_lines_are_redacted_including_extras_and_tracebacks() -> None:
    try:
        raise ValueError("bad header Basic c2VjcmV0OnNlY3JldA==")
    except ValueError:
        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "got %s", ("secret=x1y2",), None
        )
        import sys

        record.exc_info = sys.exc_info()
    record.header = "Bearer abcdefghijkl"
    line = JSONFormatter().format(record)
    entry = orjson.loads(line)
    assert "x1y2" not in line and "c2VjcmV0" not in line and "abcdefghijkl" not in line
    assert entry["msg"] == "got secret=[redacted]"
