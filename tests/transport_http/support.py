"""Shared set-up for REST tests: a prefix administrator with a secret key, and store snapshots.

The layout is the one Handle.Net sites use and pyhandle assumes: the prefix handle
``0.NA/<prefix>`` holds an admin group ``200:0.NA/<prefix>`` (HS_VLIST) whose members may
create handles under the prefix, and every handle pyhandle creates names that group in its
HS_ADMIN. The group's member here is ``300:<prefix>/ADMIN``, an HS_SECKEY stored hashed.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

from idnode.auth.identity import Identity
from idnode.auth.secrets import hash_secret
from idnode.codes import AdminPermission as P
from idnode.codes import Permission
from idnode.model import HS_ADMIN, HS_SECKEY, HS_VLIST, NA_PREFIX, HandleValue, ValueReference
from idnode.store.base import Store
from idnode.wire.admin import AdminRecord, encode_admin
from idnode.wire.vlist import encode_vlist

PREFIX = "20.500.77"
SECRET = "pyh4ndle-s3cret"
OTHER_SECRET = "0ther-s3cret"
GROUP_INDEX = 200
PRIVATE = Permission.ADMIN_READ | Permission.ADMIN_WRITE  # "1100", as HSJ stores HS_SECKEY
# what a prefix administrator may do on the prefix handle: create and list handles
PREFIX_ADMIN_BITS = P.ADD_HANDLE | P.DELETE_HANDLE | P.LIST_HANDLES | P.AUTHORIZED_READ
HANDLE_ADMIN_BITS = P(0xFFF) & ~(P.ADD_NA | P.DELETE_NA)


def admin_identity(prefix: str = PREFIX) -> Identity:
    return Identity(f"{prefix}/ADMIN", 300)


def other_identity(prefix: str = PREFIX) -> Identity:
    """A key that verifies but administers nothing."""
    return Identity(f"{prefix}/OTHER", 300)


def basic(identity: Identity | str, secret: str) -> dict[str, str]:
    """The Authorization header pyhandle builds (utilhandle.create_authentication_string)."""
    user = quote(str(identity).encode("utf-8"))
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def prefix_admin_values(prefix: str = PREFIX) -> list[HandleValue]:
    """Values added to ``0.NA/<prefix>``: the admin group and the grant to it."""
    group = [ValueReference(NA_PREFIX + prefix, 300), admin_identity(prefix).as_reference()]
    grant = AdminRecord(NA_PREFIX + prefix, GROUP_INDEX, PREFIX_ADMIN_BITS)
    return [
        HandleValue(101, HS_ADMIN, encode_admin(grant)),
        HandleValue(GROUP_INDEX, HS_VLIST, encode_vlist(group)),
    ]


def key_handle_values(
    prefix: str, secret: str, *, hashed: bool = True, iterations: int = 1000
) -> list[HandleValue]:
    """A handle holding one secret key at 300, administered by the prefix's admin group (so
    the prefix admin can read and change its own key)."""
    data = hash_secret(secret, iterations=iterations) if hashed else secret.encode()
    owner = AdminRecord(NA_PREFIX + prefix, GROUP_INDEX, HANDLE_ADMIN_BITS)
    return [
        HandleValue(100, HS_ADMIN, encode_admin(owner)),
        HandleValue(300, HS_SECKEY, data, PRIVATE),
    ]


async def provision(store: Store, prefix: str = PREFIX) -> None:
    """What an operator does once: the admin group, the admin's key, and a bystander key."""
    await store.add_values(NA_PREFIX + prefix, prefix_admin_values(prefix))
    await store.create_handle(f"{prefix}/ADMIN", key_handle_values(prefix, SECRET))
    await store.create_handle(
        f"{prefix}/OTHER", key_handle_values(prefix, OTHER_SECRET, hashed=False)
    )


async def snapshot(store: Store, prefix: str = PREFIX) -> tuple[int, dict[str, Any]]:
    """Everything a failed write must leave alone: the log serial and every record."""
    names = await store.list_handles(prefix) + await store.list_handles("0.NA")
    return await store.serial(), {h: await store.get_handle(h) for h in names}
