"""Background tasks a node component owns (a mirror's pull loop, a fence watch, a follower
of store announcements): stopping one is always the same cancel-and-wait, written once."""

from __future__ import annotations

import asyncio
import contextlib


async def stop_task(task: asyncio.Task | None) -> None:
    """Cancel ``task`` (if any) and wait until it has finished, so a component's ``close``
    returns only once its loop no longer touches the store."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


__all__ = ["stop_task"]
