"""HS_NA_DELEGATE: the older name of HS_SITE.PREFIX -- site data, not a handle reference.

RFC 3651 section 3.2.3 gives HS_NA_DELEGATE the layout of HS_SITE, and HSJ reads it that way
everywhere: ``Common.LEGACY_DERIVED_PREFIX_SITE_TYPE = "HS_NA_DELEGATE"`` sits beside
``DERIVED_PREFIX_SITE_TYPE = "HS_SITE.PREFIX"`` in ``DERIVED_PREFIX_SITE_INFO_TYPES``, its
resolver decodes both with ``Util.getSitesAndAltSitesFromValues``, and its admin tool edits
both with the site editor. HSJ's service handle types (``SERVICE_HANDLE_TYPES``) are HS_SERV
and HS_SERV.PREFIX only. So a value of this type is an HS_SITE record serving derived
prefixes (``Role.PREFIX_SITE``), decoded, validated and shown exactly like HS_SITE.PREFIX.
"""

from __future__ import annotations

from idnode.model import HS_NA_DELEGATE
from idnode.wire.types.base import Role
from idnode.wire.types.hs_site import site_type

TYPE = site_type(HS_NA_DELEGATE, Role.PREFIX_SITE)

__all__ = ["TYPE"]
