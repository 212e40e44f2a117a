"""The quota counters on every engine: guarded increments that refuse the whole write."""

from __future__ import annotations

import pytest

from idnode.auth.identity import Identity
from idnode.errors import DailyRequestLimit, RegistrationLimit
from idnode.model import HandleValue
from idnode.service.policies import Write
from idnode.service.quotas import (
    REGISTRATIONS,
    REQUESTS,
    QuotaLimits,
    QuotaPolicy,
    Quotas,
    holder_key,
    used,
)
from idnode.store.governance import day_of

WHO = Identity("0.NA/88.1000.1", 300)
P = "88.1000.1"


def policy(clock, **limits: int) -> QuotaPolicy:
    return QuotaPolicy(Quotas(QuotaLimits(**limits), clock, exempt=lambda who: False))


def create(handle: str) -> Write:
    return Write(WHO, "create", handle, None, [HandleValue(1, "URL", b"u")])


async def write(store, pol: QuotaPolicy, handle: str) -> None:
    effects = pol.effects(create(handle))
    await store.create_handle(handle, [HandleValue(1, "URL", b"u")], effects=effects)


async def test_counts_and_refuses_atomically(store, clock) -> None:
    pol = policy(clock, daily_requests=5, registrations_per_prefix=2)
    await store.home_prefix(P)
    await write(store, pol, f"{P}/a")
    await write(store, pol, f"{P}/b")
    with pytest.raises(RegistrationLimit):
        await write(store, pol, f"{P}/c")
    assert await store.get_handle(f"{P}/c") is None  # the refused write left nothing
    holder = holder_key(WHO)
    assert await used(store, holder, REGISTRATIONS, P.lower()) == 2
    assert await used(store, holder, REQUESTS, "", day_of(clock())) == 2  # c rolled back


async def test_read_counts_share_the_daily_quota_and_reset_next_day(store, clock) -> None:
    quotas = Quotas(QuotaLimits(daily_requests=2), clock, exempt=lambda who: False)
    await quotas.count_read(store, WHO)
    await quotas.count_read(store, WHO)
    with pytest.raises(DailyRequestLimit):
        await quotas.count_read(store, WHO)
    await quotas.count_read(store, None)  # anonymous: nothing to count
    clock.now += 86400
    await quotas.count_read(store, WHO)


async def test_an_organisations_identities_share_one_holder(store, clock) -> None:
    """An identity with a registry account of an organisation counts as that organisation."""
    now = int(clock())
    other = Identity("88.1000.1/user-b", 300)
    async with store.atomic() as tx:
        await tx.execute(
            "INSERT INTO {s}.organisations (legal_name, credit_code, contact, documents, state,"
            " created_at, updated_at) VALUES ('Org', '91110000MA00000000', '{}', '[]',"
            " 'approved', ?, ?)",
            now, now,
        )  # fmt: skip
        org = await tx.fetchval("SELECT id FROM {s}.organisations")
        for n, who in enumerate((WHO, other)):
            await tx.execute(
                "INSERT INTO {s}.accounts (name, role, org_id, identity, token_hash,"
                " created_at) VALUES (?, 'registrar', ?, ?, ?, ?)",
                f"acc{n}", org, str(who), f"hash{n}", now,
            )  # fmt: skip
    quotas = Quotas(QuotaLimits(daily_requests=3), clock, exempt=lambda who: False)
    await quotas.count_read(store, WHO)
    await quotas.count_read(store, other)
    await quotas.count_read(store, WHO)
    with pytest.raises(DailyRequestLimit):
        await quotas.count_read(store, other)
    assert await used(store, f"org:{org}", REQUESTS, "", day_of(clock())) == 3
