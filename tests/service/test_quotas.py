"""The [quotas] settings: defaults, per-identity overrides, who is exempt."""

from __future__ import annotations

import pytest

from idnode.auth.identity import Identity
from idnode.config import ConfigError, QuotasSection
from idnode.errors import RegistrationLimit
from idnode.model import HandleValue
from idnode.service.policies import BulkWrite, Write
from idnode.service.quotas import QuotaLimits, QuotaPolicy, Quotas, parse_overrides
from idnode.store.effects import NO_EFFECTS

A = Identity("0.NA/88.1000.1", 300)
OPERATOR = Identity("0.NA/88.1000", 300)


def quotas(**settings) -> Quotas:
    return Quotas.from_config(QuotasSection(**settings), lambda: 0.0, lambda w: w == OPERATOR)


def test_overrides_fill_in_the_defaults():
    defaults = QuotaLimits(daily_requests=10, registrations_per_prefix=5)
    got = parse_overrides(["300:0.NA/88.1000.1 daily_requests=100"], defaults)
    assert got == {A: QuotaLimits(100, 5, 0)}


@pytest.mark.parametrize(
    "entry",
    ["", "0.NA/88.1 daily_requests=1", "300:0.NA/88.1 daily=1", "300:0.NA/88.1 daily_requests=x"],
)
def test_a_bad_override_stops_the_node_at_start(entry):
    with pytest.raises(ConfigError):
        quotas(overrides=[entry])


def test_negative_limits_are_refused():
    with pytest.raises(ConfigError):
        quotas(daily_requests=-1)


def test_nobody_is_counted_when_nothing_is_limited():
    q = quotas()
    assert not q.enabled and q.statements(A, requests=1) == ()
    only_one = quotas(overrides=["300:0.NA/88.1000.1 prefixes_per_organisation=2"])
    assert only_one.enabled and only_one.limits_for(OPERATOR) is None


def test_operators_and_anonymous_requests_have_no_quota():
    q = quotas(daily_requests=1)
    assert q.statements(OPERATOR, requests=1) == () and q.statements(None, requests=1) == ()
    assert len(q.statements(A, requests=1)) == 1


def test_what_a_write_counts():
    policy = QuotaPolicy(quotas(daily_requests=9, registrations_per_prefix=9,
                                prefixes_per_organisation=9))  # fmt: skip
    new = [HandleValue(1, "URL", b"u")]
    kinds = lambda e: sorted(st.args[2] for st in e.statements)  # noqa: E731
    assert kinds(policy.effects(Write(A, "create", "88.1000.1/x", None, new))) == [
        "registrations", "requests"]  # fmt: skip
    assert kinds(policy.effects(Write(A, "create", "0.NA/88.1000.1.2", None, new))) == [
        "prefixes", "requests"]  # fmt: skip
    assert kinds(policy.effects(Write(A, "create", "88.1000.1/x", new, new))) == ["requests"]
    assert kinds(policy.effects(Write(A, "delete", "88.1000.1/x", new, None))) == ["requests"]
    assert policy.effects(Write(OPERATOR, "create", "88.1000.1/y", None, new)) is NO_EFFECTS


def test_a_bulk_load_larger_than_the_quota_is_refused_whole():
    policy = QuotaPolicy(quotas(registrations_per_prefix=2))
    bulk = BulkWrite(A, ["88.1000.1/a", "88.1000.1/b", "88.1000.1/c"])
    with pytest.raises(RegistrationLimit):
        policy.bulk_effects(bulk)
    two = policy.bulk_effects(BulkWrite(A, ["88.1000.1/a", "88.1000.1/b"]))
    assert [st.args[5] for st in two.statements] == [2]  # one guarded increment of 2
