"""Pieces every ``idnode`` sub-command shares: how it fails, how it prints JSON, and how it
runs against a node directory in-process.

Every command fails with a one-line message and exit code 1 (it ran, what it asked for
failed) or 2 (bad arguments or configuration), never with a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import orjson
import typer
from rich.console import Console

from idnode import runtime

T = TypeVar("T")

err = Console(stderr=True)
out = Console()

# The real clock and entropy of a command's process: every command passes these down, and no
# module below reads the machine's own (tests/test_runtime_sources.py).
RUNTIME: runtime.Runtime = runtime.system()

USAGE_ERROR = 2  # bad arguments or configuration
FAILURE = 1  # the command ran but what it asked for failed


def fail(message: str, code: int = FAILURE) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def emit(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout."""
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")


def on_local_node(directory: Path, work: Callable[[Any], Awaitable[T]]) -> T:
    """Open the node in ``directory`` without background tasks, run ``work(node)``, close it."""
    from idnode.config import ConfigError, load_config
    from idnode.errors import IdnodeError
    from idnode.registry import service as registry_service
    from idnode.service.node import close_node, open_node

    registry_service.BACKGROUND = False  # a command, not a server: no flush or watch loops
    try:
        cfg = load_config(directory)
    except ConfigError as exc:
        fail(str(exc), USAGE_ERROR)

    async def go() -> T:
        node = await open_node(cfg, runtime=RUNTIME)
        try:
            return await work(node)
        finally:
            await close_node(node)

    try:
        return asyncio.run(go())
    except IdnodeError as exc:
        fail(exc.message)
