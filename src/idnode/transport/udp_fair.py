"""Per-source fair queueing of UDP datagrams (issue 15, item 8).

Under a flood the kernel's receive buffer is full and drops datagrams blindly: a light
client from its own address got about a fifth of its answers. The UDP server therefore
reads every datagram into this queue, one short queue per source address, and answers them
round-robin, a bounded number per turn of the event loop. Reading is cheap and answering is
not, so while the node is overloaded the queue fills up and what gets dropped is the
newest datagrams of the sources with the longest queues (the heaviest), before any work is
spent on them; a light client's datagram always finds room and waits behind at most one
datagram of each other source. When the node keeps up, every queue is short and nothing is
dropped.

Only a flood from more addresses than ``capacity`` can crowd out a light client, and then
every client is equal. Sources are the claimed UDP addresses: a spoofer can pose as many
sources, which only makes it the many-address case.
"""

from __future__ import annotations

from collections import deque
from typing import Any

DEFAULT_CAPACITY = 1024  # datagrams queued across all sources
MIN_SHARE = 2  # datagrams a source may always queue, however many sources there are


class FairQueue:
    """Datagrams queued per source; ``push`` refuses the heaviest sources' excess,
    ``take`` hands out at most ``n`` of them, one per source per round."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.hard_limit = 2 * capacity  # the bound on memory, whatever the share arithmetic
        self._queues: dict[str, deque[Any]] = {}  # insertion order is the round-robin order
        self.queued = 0
        self.dropped = 0

    def __len__(self) -> int:
        return self.queued

    def push(self, source: str, item: Any) -> bool:
        """Queue ``item`` from ``source`` unless that source already holds its fair share
        (capacity / sources queued, at least ``MIN_SHARE``) or the hard limit is reached."""
        queue = self._queues.get(source)
        length = 0 if queue is None else len(queue)
        share = max(MIN_SHARE, self.capacity // (len(self._queues) + (queue is None)))
        if length >= share or self.queued >= self.hard_limit:
            self.dropped += 1
            return False
        if queue is None:
            queue = self._queues[source] = deque()
        queue.append(item)
        self.queued += 1
        return True

    def take(self, n: int) -> list[Any]:
        """Up to ``n`` items, the oldest of each source in turn; a source served goes to the
        back of the order, so no source is favoured across calls."""
        queues = self._queues
        if len(queues) == 1:  # one source (the common flood): its oldest, in order
            source, queue = next(iter(queues.items()))
            if len(queue) <= n:
                del queues[source]
                out = list(queue)
            else:
                out = [queue.popleft() for _ in range(n)]
            self.queued -= len(out)
            return out
        out = []
        while queues and len(out) < n:
            for source in list(queues):
                queue = queues.pop(source)
                out.append(queue.popleft())
                if queue:
                    queues[source] = queue  # to the back
                if len(out) >= n:
                    break
        self.queued -= len(out)
        return out
