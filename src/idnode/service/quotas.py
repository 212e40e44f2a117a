"""Per-identity quotas: requests per day, registrations per prefix, prefixes per organisation.

IDIS top-level nodes refuse an enterprise that has used up its allowance with their own
response codes (Teleinfo ``id-pointer-sdk`` ``AbstractMessage``): 603 daily request limit,
604 registration count limit, 605 prefix limit. idnode keeps the same three quotas
(``[quotas]``; ``config.QuotasSection``) and answers the same codes; what a Handle.Net client is
sent instead is the transport's business (``transport.idis``).

Where they are enforced: in the one write path, as a ``WritePolicy`` whose effects are
guarded counter updates applied in the write's own transaction, and in the one resolver, for
resolutions by an authenticated reader. The counters live in the store (``quota_usage``,
migration 3), so every worker and every host on the same database counts against the same
numbers, and a refused write leaves nothing behind: the guard (``UPDATE ... WHERE used + n
<= limit``, ``Statement.expect``) refuses the whole transaction when it does not hold.

Who is counted: the *holder*, which is the identity's organisation when the identity belongs
to a registry account of one (``org:<id>``), else the identity itself. Anonymous requests
have no quota (the transport's rate limits govern them) and node operators have none.

What counts: every successful write through the write service (bulk loads count once) and
every resolution with a reader are requests; a new identifier is a registration under its
prefix; a new prefix handle ``0.NA/...`` is a prefix. Deleting gives nothing back: the
quotas are allowances of work, not a cap on what exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from idnode.auth.acl import is_prefix_handle
from idnode.auth.identity import Identity
from idnode.config import ConfigError, QuotasSection
from idnode.errors import DailyRequestLimit, PrefixLimit, QuotaExceeded, RegistrationLimit
from idnode.model import handle_key
from idnode.names import prefix_part
from idnode.service.policies import BulkWrite, Write
from idnode.store.base import Store
from idnode.store.effects import NO_EFFECTS, Effects, Statement
from idnode.store.governance import day_of

REQUESTS, REGISTRATIONS, PREFIXES = "requests", "registrations", "prefixes"

# One guarded increment. The holder is the identity's organisation when it has a registry
# account, else the identity; with ``expect=1`` an update whose guard fails touches no row
# and refuses the whole transaction.
COUNT = (
    "INSERT INTO {s}.quota_usage AS t (holder, kind, scope, period, used)"
    " VALUES (COALESCE((SELECT 'org:' || a.org_id FROM {s}.accounts a"
    " WHERE a.identity = ? AND a.org_id IS NOT NULL LIMIT 1), ?), ?, ?, ?, ?)"
    " ON CONFLICT (holder, kind, scope, period) DO UPDATE SET used = t.used + excluded.used"
    " WHERE t.used + excluded.used <= ?"
)
USED = "SELECT used FROM {s}.quota_usage WHERE holder = ? AND kind = ? AND scope = ? AND period = ?"


@dataclass(frozen=True, slots=True)
class QuotaLimits:
    """The three allowances; 0 means unlimited."""

    daily_requests: int = 0
    registrations_per_prefix: int = 0
    prefixes_per_organisation: int = 0

    @property
    def any(self) -> bool:
        return bool(
            self.daily_requests or self.registrations_per_prefix or self.prefixes_per_organisation
        )


_FIELDS = ("daily_requests", "registrations_per_prefix", "prefixes_per_organisation")


def parse_overrides(entries: Iterable[str], defaults: QuotaLimits) -> dict[Identity, QuotaLimits]:
    """``["300:0.NA/88.1 daily_requests=10", ...]`` -> limits per identity (defaults filled in).

    Raises ``ConfigError`` naming the entry, so a typo stops the node at start, not at the
    first request of that identity.
    """
    out: dict[Identity, QuotaLimits] = {}
    for entry in entries:
        words = str(entry).split()
        if not words:
            raise ConfigError("[quotas] overrides: empty entry")
        try:
            who = Identity.parse(words[0])
        except Exception:
            raise ConfigError(f"[quotas] overrides: {words[0]!r} is not index:handle") from None
        limits = defaults
        for word in words[1:]:
            name, sep, value = word.partition("=")
            if not sep or name not in _FIELDS or not value.isdigit():
                raise ConfigError(
                    f"[quotas] overrides: {word!r} in {entry!r}; want one of "
                    + ", ".join(f"{f}=N" for f in _FIELDS)
                )
            limits = replace(limits, **{name: int(value)})
        out[who] = limits
    return out


def holder_key(who: Identity) -> str:
    """The fallback holder: the identity, compared as identities are (case-folded handle)."""
    handle, index = who.key
    return f"{index}:{handle}"


class Quotas:
    """The node's quota rules; ``exempt(identity)`` says who has none (the node operators)."""

    def __init__(
        self,
        defaults: QuotaLimits,
        clock: Callable[[], float],
        exempt: Callable[[Identity], bool],
        overrides: dict[Identity, QuotaLimits] | None = None,
    ) -> None:
        self.defaults = defaults
        self.clock = clock
        self.exempt = exempt
        self.overrides = dict(overrides or {})

    @classmethod
    def from_config(
        cls, section: QuotasSection, clock: Callable[[], float], exempt: Callable[[Identity], bool]
    ) -> Quotas:
        for name in _FIELDS:
            if getattr(section, name) < 0:
                raise ConfigError(f"[quotas] {name} must be 0 (off) or positive")
        defaults = QuotaLimits(
            section.daily_requests, section.registrations_per_prefix,
            section.prefixes_per_organisation,
        )  # fmt: skip
        return cls(defaults, clock, exempt, parse_overrides(section.overrides, defaults))

    @property
    def enabled(self) -> bool:
        return self.defaults.any or any(v.any for v in self.overrides.values())

    def limits_for(self, who: Identity | None) -> QuotaLimits | None:
        """The allowances of ``who``; None for nobody to count (anonymous, an operator)."""
        if who is None or self.exempt(who):
            return None
        limits = self.overrides.get(who, self.defaults)
        return limits if limits.any else None

    def statements(
        self,
        who: Identity | None,
        *,
        requests: int = 0,
        registrations: dict[str, int] | None = None,
        prefixes: int = 0,
    ) -> tuple[Statement, ...]:
        """The guarded increments for one request of ``who``; () when nothing is limited."""
        limits = self.limits_for(who)
        if limits is None or who is None:
            return ()
        out: list[Statement] = []
        if limits.daily_requests and requests:
            out.append(
                self._count(who, REQUESTS, "", day_of(self.clock()), requests,
                            limits.daily_requests, DailyRequestLimit(
                                f"{who}: the daily request limit ({limits.daily_requests})"
                                " is reached; try again tomorrow (UTC)"))
            )  # fmt: skip
        if limits.registrations_per_prefix:
            for prefix, n in sorted((registrations or {}).items()):
                out.append(
                    self._count(who, REGISTRATIONS, handle_key(prefix), "", n,
                                limits.registrations_per_prefix, RegistrationLimit(
                                    f"{who}: the registration limit under {prefix}"
                                    f" ({limits.registrations_per_prefix}) is reached"))
                )  # fmt: skip
        if limits.prefixes_per_organisation and prefixes:
            out.append(
                self._count(who, PREFIXES, "", "", prefixes, limits.prefixes_per_organisation,
                            PrefixLimit(f"{who}: the prefix limit"
                                        f" ({limits.prefixes_per_organisation}) is reached"))
            )  # fmt: skip
        return tuple(out)

    @staticmethod
    def _count(
        who: Identity,
        kind: str,
        scope: str,
        period: str,
        n: int,
        limit: int,
        refused: QuotaExceeded,
    ) -> Statement:
        if n > limit:  # the insert of a first use is not guarded: refuse it here
            raise refused
        args = (str(who), holder_key(who), kind, scope, period, n, limit)
        return Statement(COUNT, args, expect=1, refused=refused)

    async def count_read(self, store: Store, who: Identity | None) -> None:
        """Count one authenticated resolution against ``who``'s daily requests (603 when
        they are used up). Not logged: a count is nothing a cache or mirror follows."""
        statements = self.statements(who, requests=1)
        if statements:
            await store.apply(Effects(statements=statements), logged=False)


class QuotaPolicy:
    """The write service's side of the quotas (``service.policies.WritePolicy``)."""

    def __init__(self, quotas: Quotas) -> None:
        self.quotas = quotas

    def check(self, write: Write) -> None:
        """Nothing to check before the write: the guards in ``effects`` decide, atomically."""

    def effects(self, write: Write) -> Effects:
        registrations: dict[str, int] = {}
        prefixes = 0
        if write.action == "create" and write.before is None:
            if is_prefix_handle(write.handle):
                prefixes = 1
            elif "/" in write.handle:
                registrations[prefix_part(write.handle)] = 1
        statements = self.quotas.statements(
            write.who, requests=1, registrations=registrations, prefixes=prefixes
        )
        return Effects(statements=statements) if statements else NO_EFFECTS

    def check_bulk(self, bulk: BulkWrite) -> None:
        """Nothing: ``bulk_effects`` guards the counts in the load's transaction."""

    def bulk_effects(self, bulk: BulkWrite) -> Effects:
        registrations: dict[str, int] = {}
        prefixes = 0
        for handle in bulk.handles:
            if is_prefix_handle(handle):
                prefixes += 1
            elif "/" in handle:
                prefix = prefix_part(handle)
                registrations[prefix] = registrations.get(prefix, 0) + 1
        statements = self.quotas.statements(
            bulk.who, requests=1, registrations=registrations, prefixes=prefixes
        )
        return Effects(statements=statements) if statements else NO_EFFECTS


async def used(store: Store, holder: str, kind: str, scope: str = "", period: str = "") -> int:
    """What ``holder`` has used of one quota (for operators' tools and tests)."""
    value = await store.query_value(USED, holder, kind, scope, period)
    return int(value or 0)
