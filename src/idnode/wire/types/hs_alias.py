"""HS_ALIAS (RFC 3651 section 3.2.5): this handle is another name for the handle it holds.

Resolvers follow it, so a write must carry a non-empty UTF-8 handle (the HS_SERV layout,
``handle_ref``); JSON shows it as the plain string it is.
"""

from __future__ import annotations

from idnode.model import HS_ALIAS
from idnode.wire.types.base import ValueType
from idnode.wire.types.handle_ref import decode_handle_ref, encode_handle_ref

TYPE: ValueType[str] = ValueType(name=HS_ALIAS, parse=decode_handle_ref, encode=encode_handle_ref)

encode_alias = encode_handle_ref
decode_alias = decode_handle_ref

__all__ = ["TYPE", "decode_alias", "encode_alias"]
