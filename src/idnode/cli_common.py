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
from rich.markup import escape

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
    # escaped and never wrapped: "[hierarchy] root_info" is text, and one line stays one line
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def emit(obj: Any) -> None:
    """Print ``obj`` as indented JSON on stdout."""
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode() + "\n")


def node_config(directory: Path):
    """The node's configuration, or a one-line usage error naming what is wrong."""
    from idnode.config import ConfigError, load_config

    try:
        return load_config(directory)
    except ConfigError as exc:
        fail(str(exc), USAGE_ERROR)


def on_local_node(directory: Path, work: Callable[[Any], Awaitable[T]], *, failure: str = "") -> T:
    """Open the node in ``directory`` without background tasks, run ``work(node)``, close it."""
    from idnode.app import open_node
    from idnode.errors import IdnodeError

    cfg = node_config(directory)

    async def go() -> T:
        node = await open_node(cfg, runtime=RUNTIME)  # no background work: a command
        try:
            return await work(node)
        finally:
            await node.close()

    try:
        return asyncio.run(go())
    except IdnodeError as exc:
        fail(failure + exc.message)
