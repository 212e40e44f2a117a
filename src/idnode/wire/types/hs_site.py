"""HS_SITE (RFC 3651 section 3.2.2) and HS_SITE.PREFIX: where a handle service lives.

Both carry the same record, ``SiteInfo`` (layout and HSJ's site JSON in ``idnode.wire.site``);
they differ in what they serve. HS_SITE on a prefix handle names the site that answers for
handles under that prefix; HS_SITE.PREFIX names the site that answers for the *derived*
prefixes below it (HSJ ``Common.DERIVED_PREFIX_SITE_TYPE``, used when resolving
``0.NA/20.500.123`` at the site of ``20.500``). HS_NA_DELEGATE is HS_SITE.PREFIX's older name
(``hs_na_delegate``).

A write must carry a record that decodes: resolvers act on it.
"""

from __future__ import annotations

from idnode.model import HS_SITE, HS_SITE_6
from idnode.wire.site import SiteInfo, decode_site, encode_site, site_from_json, site_to_json
from idnode.wire.types.base import Role, ValueType

HS_SITE_PREFIX = HS_SITE_6  # "HS_SITE.PREFIX" (``idnode.model`` calls it HS_SITE_6)


def site_type(name: str, role: Role) -> ValueType[SiteInfo]:
    """A type whose data is one HS_SITE record shown as ``{"format": "site"}``."""
    return ValueType(
        name=name,
        parse=decode_site,
        encode=encode_site,
        json_format="site",
        render=site_to_json,
        read=site_from_json,
        role=role,
    )


TYPE = site_type(HS_SITE, Role.SITE)
PREFIX_TYPE = site_type(HS_SITE_PREFIX, Role.PREFIX_SITE)

__all__ = ["HS_SITE_PREFIX", "PREFIX_TYPE", "TYPE", "site_type"]
