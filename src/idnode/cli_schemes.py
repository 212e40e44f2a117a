"""``idnode scheme NAME``: the Handle identifier a scheme's name maps to, and back.

An operator homes a GS1 key, an Ecode or an OID by creating the Handle identifier it maps to
(docs/schemes.md); this command says which, for a node's ``[schemes]`` (``--node``) or a
prefix given here (``--prefix``), without a server: the mapping is a pure rewrite.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from idnode.cli_common import USAGE_ERROR, fail
from idnode.config import ConfigError, SchemesSection, load_config
from idnode.errors import IdnodeError
from idnode.schemes.registry import SchemeRegistry


def scheme(
    name: Annotated[
        str, typer.Argument(help="urn:oid:..., ecode:..., gs1:01/<GTIN>..., or a Handle name")
    ],
    node: Annotated[
        Path | None, typer.Option(help="node directory: its [schemes] and prefixes")
    ] = None,
    prefix: Annotated[
        str, typer.Option(help="the Handle prefix names map under (without --node)")
    ] = "",
) -> None:
    """Map a scheme's name onto its Handle identifier, or a Handle name onto its forms."""
    try:
        if node is not None:
            cfg = load_config(node)
            settings, prefixes = cfg.schemes, cfg.node.prefixes
        elif prefix:
            settings, prefixes = SchemesSection(prefix=prefix), [prefix]
        else:
            fail("give --node DIR or --prefix PREFIX", USAGE_ERROR)
        registry = SchemeRegistry.from_settings(settings, prefixes)
        handle = registry.to_handle(name)
    except ConfigError as exc:
        fail(str(exc), USAGE_ERROR)
    except IdnodeError as exc:
        fail(f"{name}: {exc.message}")
    body = {"name": name, "handle": handle, "forms": registry.forms_of(handle)}
    sys.stdout.write(orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n")


def register(app: typer.Typer) -> None:
    """Add ``idnode scheme`` to the CLI."""
    app.command("scheme")(scheme)


__all__ = ["register"]
