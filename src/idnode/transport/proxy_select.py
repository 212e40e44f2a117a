"""Where the proxy sends a browser: the 10320/LOC choice HANDLE.NET's proxy makes, then URL.

A record may hold a ``10320/LOC`` value (``wire/types/loc.py``) with several locations. Its
root's ``chooseby`` (default ``locatt,country,weighted``, as HANDLE.NET documents it) names
the steps, in order, that narrow the candidates:

* ``locatt``: keep the locations whose attributes match every ``name:value`` the client
  asked for (``?locatt=view:json``, ``?locatt=country:cn``); when none match, keep them all;
* ``country``: needs the client's country from a geolocation database the node does not
  have; skipped (docs/compatibility.md says so);
* ``weighted``: pick one at random in proportion to ``weight``; a location of weight 0 is
  picked only when every candidate left has weight 0 (then the first), so a ``view="json"``
  mirror of weight 0 is reached by ``locatt`` alone.

Without a ``weighted`` step the first candidate wins. The random draw comes from the node's
``Random`` (``idnode.runtime``), so tests choose with a seeded source. A record whose
10320/LOC does not parse (clients store free text there) falls back to its first URL value,
as HANDLE.NET's proxy skips a record it cannot read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from idnode.errors import InvalidValue
from idnode.model import URL, HandleValue
from idnode.runtime import Random
from idnode.wire.types.loc import LOC_TYPE, Location, parse_locations

DEFAULT_CHOOSEBY = ("locatt", "country", "weighted")


@dataclass(frozen=True, slots=True)
class Target:
    """The URL to redirect to; ``random`` when a weighted draw picked it (not cacheable)."""

    url: str
    random: bool = False


def parse_locatt(raw: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``?locatt=country:cn,view:json`` (repeatable) -> pairs; an item without ``:`` is
    refused as the client's error rather than silently ignored."""
    pairs = []
    for item in raw:
        for part in item.split(","):
            if not part.strip():
                continue
            name, sep, value = part.partition(":")
            if not sep or not name.strip():
                raise InvalidValue(f"locatt must be name:value, got {part.strip()!r}")
            pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def _matches(loc: Location, wanted: Sequence[tuple[str, str]]) -> bool:
    return all((loc.get(name) or "").lower() == value.lower() for name, value in wanted)


def _weighted(candidates: Sequence[Location], random: Random) -> tuple[Location, bool]:
    positive = [loc for loc in candidates if loc.weight > 0]
    if not positive:
        return candidates[0], False
    if len(positive) == 1:
        return positive[0], False
    total = sum(loc.weight for loc in positive)
    point = int.from_bytes(random(8), "big") / 2**64 * total
    for loc in positive:
        point -= loc.weight
        if point < 0:
            return loc, True
    return positive[-1], True  # rounding at the very top of the range


def choose_location(
    data: bytes, locatt: Sequence[tuple[str, str]], random: Random
) -> Target | None:
    """The location a 10320/LOC value selects, or None (unreadable, or no locations)."""
    try:
        record = parse_locations(data)
    except InvalidValue:
        return None
    candidates: list[Location] = list(record.locations)
    if not candidates:
        return None
    steps = record.chooseby or DEFAULT_CHOOSEBY
    for step in steps:
        if step == "locatt" and locatt:
            matching = [loc for loc in candidates if _matches(loc, locatt)]
            candidates = matching or candidates
        elif step == "weighted":
            chosen, drawn = _weighted(candidates, random)
            return Target(chosen.href, drawn)
    return Target(candidates[0].href)


def redirect_target(
    values: Sequence[HandleValue], locatt: Sequence[tuple[str, str]], random: Random
) -> Target | None:
    """10320/LOC first (lowest index that yields a location), then the first URL value."""
    ordered = sorted(values, key=lambda v: v.index)
    for value in ordered:
        if value.type.lower() == LOC_TYPE:
            target = choose_location(value.data, locatt, random)
            if target is not None:
                return target
    for value in ordered:
        if value.type == URL:
            return Target(value.data.decode("utf-8", "replace"))
    return None


__all__ = ["Target", "choose_location", "parse_locatt", "redirect_target"]
