"""10320/LOC location selection (``transport/proxy_select``): weights, locatt, chooseby, and
the fall-back to the first URL value, with a seeded random source."""

from __future__ import annotations

from collections import Counter

import pytest

from idnode.errors import InvalidValue
from idnode.model import URL, HandleValue
from idnode.runtime import SeededRandom
from idnode.transport.proxy_select import choose_location, parse_locatt, redirect_target

WEIGHTED = (
    b"<locations>"
    b'<location href="https://a.example/" weight="3"/>'
    b'<location href="https://b.example/" weight="1"/>'
    b'<location href="https://never.example/" weight="0" view="json"/>'
    b"</locations>"
)


def test_weighted_choice_follows_the_weights_and_skips_weight_zero() -> None:
    random = SeededRandom(7)
    picks = Counter(choose_location(WEIGHTED, (), random).url for _ in range(4000))
    assert set(picks) == {"https://a.example/", "https://b.example/"}
    share = picks["https://a.example/"] / 4000
    assert 0.70 < share < 0.80  # 3 : 1, seeded: the same counts every run
    assert choose_location(WEIGHTED, (), random).random


def test_locatt_reaches_a_location_of_weight_zero() -> None:
    chosen = choose_location(WEIGHTED, (("view", "JSON"),), SeededRandom(1))
    assert chosen.url == "https://never.example/" and not chosen.random


def test_without_a_weighted_step_the_first_candidate_wins() -> None:
    data = WEIGHTED.replace(b"<locations>", b'<locations chooseby="locatt">')
    assert choose_location(data, (), SeededRandom(1)).url == "https://a.example/"


def test_all_weights_zero_picks_the_first() -> None:
    data = b'<locations><location href="https://z1/" weight="0"/><location href="https://z2/" weight="0"/></locations>'  # noqa: E501
    assert choose_location(data, (), SeededRandom(1)).url == "https://z1/"


def test_an_unreadable_loc_falls_back_to_the_first_url() -> None:
    values = [
        HandleValue(2, URL, b"https://second.example/"),
        HandleValue(1, "10320/LOC", b"free text, not XML"),
        HandleValue(3, URL, b"https://third.example/"),
    ]
    assert redirect_target(values, (), SeededRandom(1)).url == "https://second.example/"
    assert redirect_target([HandleValue(1, "DESC", b"x")], (), SeededRandom(1)) is None


def test_parse_locatt() -> None:
    assert parse_locatt(["country:cn,view:json", "lang:zh"]) == (
        ("country", "cn"), ("view", "json"), ("lang", "zh"),
    )  # fmt: skip
    with pytest.raises(InvalidValue):
        parse_locatt(["country"])
