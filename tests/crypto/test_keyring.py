"""Storage keys: key file and environment, ids, permissions, reload when the file changes."""

from __future__ import annotations

import base64
import json

import pytest

from idnode.crypto.keyring import (
    ENV_VAR,
    KeyringError,
    add_active_key,
    create_key_file,
    drop_keys_except,
    key_id,
    load_keyring,
    read_key_file,
)
from idnode.runtime import ManualClock, SeededRandom


def test_create_and_load(tmp_path):
    path = tmp_path / "keys.json"
    key = create_key_file(path, random=SeededRandom(0), clock=ManualClock())
    assert path.stat().st_mode & 0o777 == 0o600
    ring = load_keyring(path, env={}, clock=ManualClock())
    assert ring.active == key and ring.get(key.id) == key
    assert key.id == key_id(key.key) and len(key.id) == 4
    assert key.key.hex() not in repr(key)
    with pytest.raises(KeyringError, match="exists"):
        create_key_file(path, random=SeededRandom(0), clock=ManualClock())


def test_off_when_nothing_configured(tmp_path):
    assert load_keyring(None, env={}, clock=ManualClock()) is None


def test_missing_file_is_an_error_not_plaintext(tmp_path):
    with pytest.raises(KeyringError, match="missing"):
        load_keyring(tmp_path / "gone.json", env={}, clock=ManualClock())


def test_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "keys.json"
    create_key_file(path, random=SeededRandom(0), clock=ManualClock())
    path.chmod(0o644)
    with pytest.raises(KeyringError, match="chmod 600"):
        load_keyring(path, env={}, clock=ManualClock())


@pytest.mark.parametrize(
    "doc",
    [
        "not json",
        json.dumps({"format": "other", "version": 1}),
        json.dumps({"format": "idnode-storage-keys", "version": 1, "active": "00", "keys": []}),
        json.dumps(
            {
                "format": "idnode-storage-keys",
                "version": 1,
                "active": "00000000",
                "keys": [{"id": "00000000", "key": base64.b64encode(b"x" * 16).decode()}],
            }
        ),
    ],
)
def test_malformed_files(tmp_path, doc):
    path = tmp_path / "keys.json"
    path.write_text(doc)
    path.chmod(0o600)
    with pytest.raises(KeyringError):
        load_keyring(path, env={}, clock=ManualClock())


def test_env_key(tmp_path):
    raw = bytes(range(16))
    ring = load_keyring(None, env={ENV_VAR: base64.b64encode(raw).decode()}, clock=ManualClock())
    assert ring.active.key == raw and ring.from_env
    with pytest.raises(KeyringError, match="16 bytes"):
        load_keyring(None, env={ENV_VAR: base64.b64encode(b"short").decode()}, clock=ManualClock())
    with pytest.raises(KeyringError, match="base64"):
        load_keyring(None, env={ENV_VAR: "%%%"}, clock=ManualClock())
    # with a file too: the variable is active, the file's keys stay readable
    path = tmp_path / "keys.json"
    old = create_key_file(path, random=SeededRandom(0), clock=ManualClock())
    ring = load_keyring(path, env={ENV_VAR: base64.b64encode(raw).decode()}, clock=ManualClock())
    assert ring.active.key == raw and ring.get(old.id) == old


def test_add_reload_and_drop(tmp_path):
    path = tmp_path / "keys.json"
    first = create_key_file(path, random=SeededRandom(0), clock=ManualClock())
    ring = load_keyring(path, env={}, clock=ManualClock())
    second = add_active_key(path, random=SeededRandom(1), clock=ManualClock())
    assert ring.get(second.id) == second  # an unknown id re-reads the file at once
    assert ring.active == second
    keys, active = read_key_file(path)
    assert [k.id for k in keys] == [first.id, second.id] and active == second.id
    assert drop_keys_except(path, {second.id}) == [first]
    with pytest.raises(KeyringError):
        drop_keys_except(path, {first.id})
