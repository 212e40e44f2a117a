"""HS_VLIST (RFC 3651 section 3.2.7): an administrator group, a list of ``index:handle``.

The layout and the REST array (``[{"handle", "index"}]``) live in ``idnode.wire.vlist``.
A write must carry data that decodes: a broken group silently locks its members out.
"""

from __future__ import annotations

from idnode.model import HS_VLIST, ValueReference
from idnode.wire.types.base import ValueType
from idnode.wire.vlist import decode_vlist, encode_vlist, vlist_from_json, vlist_to_json

TYPE: ValueType[tuple[ValueReference, ...]] = ValueType(
    name=HS_VLIST,
    parse=decode_vlist,
    encode=encode_vlist,
    json_format="vlist",
    render=vlist_to_json,
    read=vlist_from_json,
)

__all__ = ["TYPE"]
