"""What every protocol client of the generator offers the drivers in ``engine``.

A channel sends one ``Op`` and returns its outcome; many calls may be outstanding at once.
Timeouts are not one timer per request (that costs more than the request on a fast node):
the engine calls ``sweep`` a few times a second and the channel fails whatever is overdue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from idnode.verify.workload import Op


@dataclass(frozen=True, slots=True)
class Failure:
    """What a pending request's future resolves to when it got no usable answer."""

    kind: str  # an error kind of ``results``: timeout, connect, malformed
    note: str | None = None


class Channel(Protocol):
    async def start(self) -> None:
        """Open sockets / connections before the clock starts."""

    async def call(self, op: Op) -> tuple[str, str | None]:
        """Send ``op`` and return (outcome, note) once answered, failed or timed out."""

    def sweep(self, now_ns: int) -> None:
        """Fail requests whose deadline (``time.perf_counter_ns``) has passed."""

    async def close(self) -> None: ...
