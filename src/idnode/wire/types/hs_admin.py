"""HS_ADMIN (RFC 3651 section 3.2.1): who administers a handle, and with which permissions.

The byte layout, ``AdminRecord`` and the REST object (``{"handle", "index", "permissions":
"011111110011"}``) live in ``idnode.wire.admin``, which authorization code imports directly.
A write must carry data that decodes: an HS_ADMIN nobody can read locks the handle.
"""

from __future__ import annotations

from idnode.model import HS_ADMIN
from idnode.wire.admin import (
    AdminRecord,
    admin_from_json,
    admin_to_json,
    decode_admin,
    encode_admin,
)
from idnode.wire.types.base import ValueType

TYPE: ValueType[AdminRecord] = ValueType(
    name=HS_ADMIN,
    parse=decode_admin,
    encode=encode_admin,
    json_format="admin",
    render=admin_to_json,
    read=admin_from_json,
)

__all__ = ["TYPE"]
