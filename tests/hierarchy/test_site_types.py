"""One classification of site and service-handle types: the registry decides, and the
resolver and the write checks agree with it.

HS_NA_DELEGATE used to be site data to ``wire.handlevalues`` and a service handle to the
resolver, which then read an HS_SITE record as a handle name (issue 13). Per RFC 3651 and HSJ
(``Common.DERIVED_PREFIX_SITE_INFO_TYPES``) it is site data: ``idnode.wire.types.hs_na_delegate``.
"""

from __future__ import annotations

import pytest

from idnode.errors import InvalidValue
from idnode.hierarchy.resolver import GlobalResolver
from idnode.model import HS_NA_DELEGATE, URL, HandleValue
from idnode.runtime import ManualClock
from idnode.service.validate import check_record
from idnode.wire.site import encode_site
from tests.hierarchy.fakenet import FakeNet, site, site_value

ROOT, TOP = 1, 2
SITE_DATA = ["HS_SITE", "HS_SITE.PREFIX", "HS_NA_DELEGATE"]  # the value is an HS_SITE record
SERVICE_HANDLES = ["HS_SERV"]  # the value names a handle holding the sites


def resolver(net: FakeNet) -> GlobalResolver:
    return GlobalResolver([site(ROOT)], transport=net.transport, wall=ManualClock())


@pytest.mark.parametrize("type_", SITE_DATA)
async def test_the_resolver_follows_every_site_type_as_a_site(type_: str):
    net = FakeNet()
    net.add(ROOT, "0.NA/88", [HandleValue(1, type_, encode_site(site(TOP)))])
    net.add(TOP, "88/thing", [HandleValue(1, URL, b"https://x/88")])
    answer = await resolver(net).resolve("88/thing")
    assert answer.values[0].data == b"https://x/88"
    assert net.log == [(ROOT, "0.NA/88"), (TOP, "88/thing")]


@pytest.mark.parametrize("type_", SERVICE_HANDLES)
async def test_the_resolver_follows_every_service_handle_type_by_name(type_: str):
    net = FakeNet()
    net.add(ROOT, "0.NA/77", [HandleValue(2, type_, b"0.SERV/77")])
    net.add(ROOT, "0.SERV/77", [site_value(site(TOP))])
    net.add(TOP, "77/thing", [HandleValue(1, URL, b"https://x/77")])
    assert (await resolver(net).resolve("77/thing")).values[0].data == b"https://x/77"


def test_writes_check_hs_na_delegate_as_a_site_record():
    check_record([HandleValue(1, HS_NA_DELEGATE, encode_site(site(TOP)))])
    with pytest.raises(InvalidValue, match="not a valid HS_NA_DELEGATE: site"):
        check_record([HandleValue(1, HS_NA_DELEGATE, b"0.SERV/77")])  # a name is no site


def test_the_registry_holds_the_classification_the_resolver_follows():
    from idnode.wire.types import (
        SERVICE_HANDLE_TYPES,
        SITE_TYPES,
        carries_site,
        names_service_handle,
    )

    assert SITE_TYPES == set(SITE_DATA)
    assert SERVICE_HANDLE_TYPES == set(SERVICE_HANDLES)
    assert carries_site("hs_na_delegate") and not names_service_handle(HS_NA_DELEGATE)
