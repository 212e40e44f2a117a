"""Storage keys: the SM4 keys that encrypt non-public values at rest (``store.encrypted``).

Where keys come from, and why both:

* a **key file** in the node directory (``[security] storage_key_file``, mode 0600, made by
  ``idnode init``): several keys, one active. Rotation adds a key here, so it is the normal
  form;
* the environment variable ``IDNODE_STORAGE_KEY`` (base64 of 16 bytes): for containers whose
  secrets arrive as variables and whose file system is read-only. When set it is the active
  key; keys in the file, if any, stay readable (so a node can move from file to variable).

Key ids are derived from the key (the first 4 bytes of SM3 over a label and the key), so the
same key always has the same id wherever it is given, and a *wrong* key is reported as "a
value carries key id X, which the keyring does not hold" rather than as corrupt data.

Key file (JSON, written atomically: a temporary file renamed over the old one)::

    {"format": "idnode-storage-keys", "version": 1, "active": "<id hex>",
     "keys": [{"id": "<8 hex>", "key": "<base64 of 16 bytes>", "created": <unix time>}]}

A serving node re-reads the file when it changed (checked at most once a second, and at once
when it meets an unknown key id), so ``idnode keys rotate`` can run beside it: the node
starts writing with the new key and reads values the rotation already re-encrypted.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from idnode.crypto.sm2 import sm3
from idnode.errors import IdnodeError
from idnode.runtime import Clock, Random

KEY_BYTES = 16  # SM4 is a 128-bit cipher
ENV_VAR = "IDNODE_STORAGE_KEY"
FILE_FORMAT = "idnode-storage-keys"
RELOAD_INTERVAL = 1.0  # seconds between checks of the key file's modification time


class KeyringError(IdnodeError):
    """The storage keys cannot be loaded or used (missing, unreadable, malformed, wrong)."""


def key_id(key: bytes) -> bytes:
    """The 4-byte id of a storage key: public, stable, and different for a different key."""
    return sm3(b"idnode storage key id\0", bytes(key))[:4]


@dataclass(frozen=True, slots=True)
class StorageKey:
    id: bytes
    key: bytes
    created: int = 0

    def __repr__(self) -> str:  # never the key
        return f"StorageKey({self.id.hex()})"


def new_key(random: Random, clock: Clock) -> StorageKey:
    raw = bytes(random(KEY_BYTES))
    return StorageKey(key_id(raw), raw, int(clock()))


class Keyring:
    """Keys by id plus the active one; optionally backed by a file it re-reads when changed
    (at most every ``RELOAD_INTERVAL`` seconds of ``clock``, which a file needs)."""

    def __init__(
        self,
        keys: list[StorageKey],
        active: bytes,
        *,
        path: Path | None = None,
        env_key: StorageKey | None = None,
        clock: Clock | None = None,
    ) -> None:
        if path is not None and clock is None:
            raise ValueError("a keyring backed by a file needs a clock to pace its re-reads")
        self._lock = threading.Lock()  # load() of a big import encrypts on the writer thread
        self._path, self._env_key, self._clock = path, env_key, clock
        self._set(keys, active)
        self._stamp = _stamp(path) if path is not None else None
        self._checked = clock.monotonic() if clock is not None else 0.0

    def _set(self, keys: list[StorageKey], active: bytes) -> None:
        by_id = {k.id: k for k in keys}
        if self._env_key is not None:
            by_id[self._env_key.id] = self._env_key
            active = self._env_key.id
        if active not in by_id:
            raise KeyringError(f"the active storage key {active.hex()} is not in the keyring")
        self._keys, self._active = by_id, active

    # -- use --------------------------------------------------------------------------------
    @property
    def active(self) -> StorageKey:
        self.refresh()
        return self._keys[self._active]

    def get(self, kid: bytes) -> StorageKey | None:
        """The key with this id; an unknown id triggers an immediate re-read of the file."""
        found = self._keys.get(bytes(kid))
        if found is None and self.refresh(force=True):
            found = self._keys.get(bytes(kid))
        return found

    def ids(self) -> list[bytes]:
        return list(self._keys)

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def from_env(self) -> bool:
        return self._env_key is not None

    def refresh(self, *, force: bool = False) -> bool:
        """Re-read the key file if it changed; True when the keys were reloaded."""
        if self._path is None or self._clock is None:
            return False
        now = self._clock.monotonic()
        if not force and now - self._checked < RELOAD_INTERVAL:
            return False
        with self._lock:
            self._checked = now
            stamp = _stamp(self._path)
            if stamp == self._stamp:
                return False
            keys, active = read_key_file(self._path)
            self._set(keys, active)
            self._stamp = stamp
            return True


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


# -- loading -------------------------------------------------------------------------------


def load_keyring(
    path: Path | None, env: Mapping[str, str] | None = None, *, clock: Clock
) -> Keyring | None:
    """The keyring a node runs with: from ``IDNODE_STORAGE_KEY`` and/or the key file.

    None when neither is configured (encryption at rest off). A configured file that is
    missing is an error, never a silent switch to plaintext.
    """
    env = os.environ if env is None else env
    env_key = parse_env_key(env[ENV_VAR]) if env.get(ENV_VAR) else None
    if path is None:
        return Keyring([env_key], env_key.id, env_key=env_key) if env_key else None
    if not path.exists():
        if env_key is not None:
            return Keyring([env_key], env_key.id, env_key=env_key)
        raise KeyringError(
            f"storage key file {path} is missing; restore it (values stored without "
            f"PUBLIC_READ cannot be read without it) or set {ENV_VAR}"
        )
    keys, active = read_key_file(path)
    return Keyring(keys, active, path=path, env_key=env_key, clock=clock)


def parse_env_key(text: str) -> StorageKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyringError(f"{ENV_VAR} is not base64") from None
    if len(raw) != KEY_BYTES:
        raise KeyringError(f"{ENV_VAR} must be {KEY_BYTES} bytes of base64, got {len(raw)}")
    return StorageKey(key_id(raw), raw)


def read_key_file(path: Path) -> tuple[list[StorageKey], bytes]:
    """(keys, active id); refuses a file others can read, as ssh refuses such a key."""
    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeyringError(f"cannot read storage key file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise KeyringError(
            f"storage key file {path} is accessible by others (mode {mode:o}); chmod 600 it"
        )
    try:
        doc = json.loads(text)
        if doc.get("format") != FILE_FORMAT or doc.get("version") != 1:
            raise ValueError("not an idnode storage key file (format/version)")
        keys = []
        for item in doc["keys"]:
            raw = base64.b64decode(item["key"], validate=True)
            if len(raw) != KEY_BYTES:
                raise ValueError(f"key {item.get('id')} is not {KEY_BYTES} bytes")
            kid = key_id(raw)
            if item.get("id") != kid.hex():
                raise ValueError(f"key {item.get('id')} does not match its id")
            keys.append(StorageKey(kid, raw, int(item.get("created", 0))))
        active = bytes.fromhex(doc["active"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise KeyringError(f"storage key file {path} is malformed: {exc}") from None
    if not keys:
        raise KeyringError(f"storage key file {path} holds no key")
    return keys, active


def write_key_file(path: Path, keys: list[StorageKey], active: bytes) -> None:
    """Write atomically with mode 0600 (temporary file in the same directory, then rename)."""
    doc = {
        "format": FILE_FORMAT,
        "version": 1,
        "active": active.hex(),
        "keys": [
            {"id": k.id.hex(), "key": base64.b64encode(k.key).decode(), "created": k.created}
            for k in keys
        ],
    }
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (json.dumps(doc, indent=1) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def create_key_file(path: Path, random: Random, clock: Clock) -> StorageKey:
    """A new key file with one fresh active key (``idnode init``); refuses to overwrite."""
    if path.exists():
        raise KeyringError(f"{path} exists; not overwriting storage keys")
    key = new_key(random, clock)
    write_key_file(path, [key], key.id)
    return key


def add_active_key(path: Path, random: Random, clock: Clock) -> StorageKey:
    """Append a fresh key to the file and make it the active one (first step of rotation)."""
    keys, _ = read_key_file(path)
    key = new_key(random, clock)
    write_key_file(path, [*keys, key], key.id)
    return key


def drop_keys_except(path: Path, keep: set[bytes]) -> list[StorageKey]:
    """Remove every key not in ``keep`` (last step of rotation); returns the removed ones."""
    keys, active = read_key_file(path)
    if active not in keep:
        raise KeyringError("refusing to drop the active storage key")
    write_key_file(path, [k for k in keys if k.id in keep], active)
    return [k for k in keys if k.id not in keep]
