"""The one resolution path (issue 13, item 3): the restricted-read rule, the stages and their
order, at service level with no sockets.

Before, the restricted-read rule was written twice (the wire handler's ``_check_restricted_read``
and the REST handler's ``_refuse_hidden``) and ``Resolver.resolve`` itself handed an anonymous
reader the public values of a query that asked for restricted ones: the table below fails
there on every NeedsAuth and NotAuthorized row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from idnode.codes import Permission
from idnode.errors import (
    HandleNotFound,
    IdnodeError,
    InvalidHandle,
    NotAuthorized,
    NotResponsible,
    ValueNotFound,
)
from idnode.model import HS_SITE, HandleValue
from idnode.names import PrefixSet
from idnode.service.resolve import (
    Answer,
    NeedsAuth,
    Referral,
    ResolutionQuery,
    Resolver,
    RoutingStage,
    Values,
)

HANDLE = "20.500.1/item"
PUBLIC = Permission.PUBLIC_READ | Permission.ADMIN_READ | Permission.ADMIN_WRITE
RESTRICTED = Permission.ADMIN_READ | Permission.ADMIN_WRITE  # "1100": admins read it
UNREADABLE = Permission.ADMIN_WRITE  # neither PUBLIC_READ nor ADMIN_READ: nobody reads it
RECORD = [
    HandleValue(1, "URL", b"https://example.com/item", PUBLIC),
    HandleValue(2, "DESC", b"an item", PUBLIC),
    HandleValue(5, "NOTE", b"private", RESTRICTED),
    HandleValue(6, "NOTE", b"write-only", UNREADABLE),
    HandleValue(7, "EMAIL", b"a@example.com", RESTRICTED),
]
ALICE, BOB = "300:20.500.1/alice", "300:20.500.1/bob"  # alice has AUTHORIZED_READ, bob not


class Store:
    """The one store method resolution uses."""

    def __init__(self, records: dict[str, list[HandleValue]]) -> None:
        self.records = records
        self.reads: list[str] = []

    async def get_handle(self, handle: str) -> list[HandleValue] | None:
        self.reads.append(handle)
        return self.records.get(handle)


async def read_check(reader: Any, record: Sequence[HandleValue]) -> bool:
    return reader == ALICE


def resolver(**kw: Any) -> Resolver:
    store = Store({HANDLE: RECORD})
    return Resolver(store, PrefixSet(["20.500.1"]), read_check=read_check, **kw)  # type: ignore[arg-type]


# -- the restricted-read rule: reader x public-only or not x filters -------------------------------
NO_FILTER: dict = {}
AUTH, DENIED = "NeedsAuth", NotAuthorized
RULE = [
    # reader, public_only, filters, expected indexes (or NeedsAuth / NotAuthorized / ValueNotFound)
    (None, True, NO_FILTER, [1, 2]),
    (None, True, {"indexes": (5,)}, ValueNotFound),
    (None, True, {"types": ("NOTE",)}, ValueNotFound),
    (None, True, {"types": ("URL",)}, [1]),
    (None, False, NO_FILTER, AUTH),
    (None, False, {"indexes": (5,)}, AUTH),
    (None, False, {"types": ("EMAIL",)}, AUTH),
    (None, False, {"indexes": (1, 2)}, [1, 2]),  # nothing restricted asked for: no challenge
    (None, False, {"types": ("URL",)}, [1]),
    (None, False, {"indexes": (6,)}, ValueNotFound),  # unreadable by anyone: nothing to read
    (ALICE, True, NO_FILTER, [1, 2]),
    (ALICE, True, {"indexes": (5,)}, ValueNotFound),
    (ALICE, False, NO_FILTER, [1, 2, 5, 7]),  # never 6: it has no ADMIN_READ
    (ALICE, False, {"indexes": (5,)}, [5]),
    (ALICE, False, {"indexes": (2,), "types": ("EMAIL",)}, [2, 7]),  # index OR type
    (ALICE, False, {"types": ("NOTE",)}, [5]),
    (BOB, True, NO_FILTER, [1, 2]),
    (BOB, True, {"types": ("URL",)}, [1]),
    (BOB, False, NO_FILTER, DENIED),
    (BOB, False, {"indexes": (5,)}, DENIED),
    (BOB, False, {"types": ("EMAIL",)}, DENIED),
    (BOB, False, {"indexes": (1,)}, [1]),  # public values only asked for: bob may have them
]


def _id(case: tuple) -> str:
    reader, public_only, filters, _ = case
    who = {None: "anonymous", ALICE: "authorised", BOB: "unauthorised"}[reader]
    return f"{who}-{'PO' if public_only else 'all'}-{filters or 'every'}"


@pytest.mark.parametrize(("reader", "public_only", "filters", "expected"), RULE, ids=map(_id, RULE))
async def test_the_restricted_read_rule(reader, public_only, filters, expected):
    query = ResolutionQuery(HANDLE, public_only=public_only, **filters)
    if expected in (DENIED, ValueNotFound):
        with pytest.raises(expected):
            await resolver().resolve(query, reader=reader)
        return
    answer = await resolver().resolve(query, reader=reader)
    if expected == AUTH:
        assert isinstance(answer, NeedsAuth) and HANDLE in answer.reason
    else:
        assert isinstance(answer, Values) and answer.expiration is None and not answer.stale
        assert [v.index for v in answer.values] == expected


@pytest.mark.parametrize(
    ("reader", "expected"), [(None, [1, 2]), (ALICE, [1, 2, 5, 7]), (BOB, [1, 2])]
)
async def test_omit_unreadable_leaves_restricted_values_out_instead_of_refusing(reader, expected):
    """The REST API's default for an authenticated caller that did not say publicOnly."""
    query = ResolutionQuery(HANDLE, omit_unreadable=True)
    answer = await resolver().resolve(query, reader=reader)
    assert isinstance(answer, Values) and [v.index for v in answer.values] == expected


async def test_without_a_read_check_nobody_reads_restricted_values():
    bare = Resolver(Store({HANDLE: RECORD}), PrefixSet(["20.500.1"]))  # type: ignore[arg-type]
    with pytest.raises(NotAuthorized):
        await bare.resolve(ResolutionQuery(HANDLE), reader=ALICE)


# -- the stages and their order ---------------------------------------------------------------
class Stage:
    """A RoutingStage answering from a table (None: go on locally), recording its calls."""

    def __init__(self, answers: dict[str, Answer] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, bool]] = []

    async def route(self, query: ResolutionQuery, *, recursion: bool) -> Answer | None:
        self.calls.append((query.handle, recursion))
        return self.answers.get(query.handle)


def test_the_fake_stage_is_a_routing_stage():
    stage: RoutingStage = Stage()  # the protocol, structurally
    assert stage is not None


SITE = (HandleValue(1, HS_SITE, b"site"),)


async def test_a_stage_answers_before_the_store_is_read():
    referral = Referral("0.NA/20.500.1.7", SITE, expiration=99)
    stage = Stage({"20.500.1.7/x": referral})
    r = resolver(stages=(stage,))
    assert await r.resolve(ResolutionQuery("20.500.1.7/x"), recursion=True) is referral
    assert stage.calls == [("20.500.1.7/x", True)]
    assert r.store.reads == []  # type: ignore[attr-defined]


async def test_a_stage_answers_for_handles_homed_elsewhere_and_none_means_not_responsible():
    upstream = Values((HandleValue(1, "URL", b"u"),), expiration=10, stale=True)
    r = resolver(stages=(Stage({"88.1/x": upstream}),))
    assert await r.resolve(ResolutionQuery("88.1/x")) is upstream
    with pytest.raises(NotResponsible):
        await r.resolve(ResolutionQuery("88.1/elsewhere"))


async def test_stages_run_in_order_and_the_first_answer_wins():
    first, second = Stage(), Stage({HANDLE: Values(())})
    r = resolver(stages=(first, second))
    assert await r.resolve(ResolutionQuery(HANDLE)) == Values(())
    assert first.calls == second.calls == [(HANDLE, False)]


async def test_the_name_check_comes_first():
    stage, gated = Stage(), []
    r = resolver(stages=(stage,), gate=lambda handle, client: gated.append(handle))
    with pytest.raises(InvalidHandle):
        await r.resolve(ResolutionQuery("no-slash"))
    assert stage.calls == [] and gated == []


async def test_the_gate_runs_before_routing_and_only_for_handles_this_node_homes():
    class Gone(HandleNotFound):
        pass

    def gate(handle: str, client: str) -> None:
        if handle.endswith("/revoked"):
            raise Gone(f"revoked: {handle}")

    stage = Stage()
    r = resolver(stages=(stage,), gate=gate)
    with pytest.raises(Gone):
        await r.resolve(ResolutionQuery("20.500.1/revoked"))
    assert stage.calls == []  # a tombstone is never referred or recursed
    with pytest.raises(NotResponsible):  # homed elsewhere: not this node's to tombstone
        await r.resolve(ResolutionQuery("88.1/revoked"))
    assert stage.calls == [("88.1/revoked", False)]


async def test_every_failure_is_told_to_on_error_and_still_raised():
    failed: list[str] = []

    class Failing(Stage):
        async def route(self, query, *, recursion):
            raise NotResponsible("suspended child")

    r = resolver(on_error=failed.append)
    with pytest.raises(HandleNotFound):
        await r.resolve(ResolutionQuery("20.500.1/none"))
    with pytest.raises(IdnodeError):
        await resolver(stages=(Failing(),), on_error=failed.append).resolve(ResolutionQuery(HANDLE))
    assert failed == ["20.500.1/none", HANDLE]


async def test_admits_is_the_gate_for_cached_answers():
    seen: list[str] = []

    def gate(handle: str, client: str) -> None:
        seen.append(handle)
        if handle == "20.500.1/gone":
            raise HandleNotFound("revoked")

    r = resolver(gate=gate)
    assert r.admits(HANDLE) and not r.admits("20.500.1/gone") and r.admits("")
    assert seen == [HANDLE, "20.500.1/gone"]
