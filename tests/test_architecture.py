"""The layers of docs/architecture.md, enforced: which room may import which, and no cycles.

Every ``import`` in ``src/idnode`` counts, those inside functions too (a lazy import is still
a dependency); only imports under ``if TYPE_CHECKING:`` are left out, as they never run.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "idnode"

CORE = "core"
# room -> the rooms it may import (its own room always)
ALLOWED: dict[str, set[str]] = {
    CORE: set(),
    "crypto": {CORE},
    # other identifier schemes (GS1, Ecode, OID): pure parsing and mapping of names
    "schemes": {CORE},
    "wire": {CORE, "crypto"},
    "store": {CORE, "crypto"},
    "auth": {CORE, "crypto", "wire", "store"},
    "service": {CORE, "crypto", "wire", "store", "auth"},
    "client": {CORE, "crypto", "wire", "auth"},
    "transport": {CORE, "crypto", "wire", "store", "auth", "service", "client", "schemes"},
    "registry": {CORE, "crypto", "wire", "store", "auth", "service", "client"},
    "hierarchy": {CORE, "crypto", "wire", "store", "auth", "service", "client"},
    "verify": {CORE, "crypto", "wire", "auth", "client"},
    # mirrors: the pull loop, the fence, backups (docs/replication.md)
    "replication": {CORE, "crypto", "wire", "store", "auth", "service", "client"},
    # factory-floor registration over MQTT: a feature's client, writing through the registry
    "ingest": {CORE, "crypto", "wire", "store", "auth", "service", "client", "registry"},
    # the web console: pages over the registry's and the node's services, served over HTTP
    "console": {CORE, "crypto", "wire", "store", "auth", "service", "client", "transport",
                "registry", "schemes"},  # fmt: skip
    "app": {
        CORE,
        "crypto",
        "wire",
        "store",
        "auth",
        "service",
        "client",
        "transport",
        "registry",
        "hierarchy",
        "ingest",
        "replication",
        "schemes",
        "console",
    },  # fmt: skip
    "cli": {
        CORE,
        "crypto",
        "wire",
        "store",
        "auth",
        "service",
        "client",
        "transport",
        "registry",
        "hierarchy",
        "ingest",
        "verify",
        "app",
        "replication",
        "schemes",
        "console",
    },  # fmt: skip
}
CORE_MODULES = {"model", "codes", "errors", "config", "logs", "runtime", "encoding", "names",
                "lifeline", "background", "__init__"}  # fmt: skip
APP_MODULES = {"app", "serve", "bootstrap", "workers"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    """``idnode.wire.site`` -> wire; any ``cli`` module -> cli; top-level core modules -> core."""
    parts = module.split(".")
    last = parts[-1]
    if last in ("__main__", "cli") or last.startswith("cli_") or last.endswith("_cli"):
        return "cli"
    if len(parts) >= 2 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    if len(parts) == 2 or module == "idnode":
        name = parts[-1]
        if name in CORE_MODULES or module == "idnode":
            return CORE
        if name in APP_MODULES:
            return "app"
        raise AssertionError(f"{module}: top-level module in no room (docs/architecture.md)")
    raise AssertionError(f"{module}: in no room")


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, module: str) -> set[tuple[str, ...]]:
    """What ``module`` imports: ``(module,)`` or ``(package, name)`` for ``from package import
    name`` (a submodule, or an attribute of the package)."""
    found: set[tuple[str, ...]] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking_only(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update((a.name,) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.update((base, a.name) for a in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def graph() -> dict[str, set[str]]:
    """module -> the idnode modules it imports (names that are attributes, not modules,
    fold into their module)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for imported in imports_of(path, module):
            name = ".".join(imported)
            if name not in modules:  # an attribute, not a submodule: its module
                name = imported[0]
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module and name != "idnode":
                edges[module].add(name)
    return edges


def test_every_import_follows_the_layers():
    wrong = sorted(
        f"{m} ({room(m)}) imports {t} ({room(t)})"
        for m, targets in graph().items()
        for t in targets
        if room(t) != room(m) and room(t) not in ALLOWED[room(m)]
    )
    assert not wrong, "imports against docs/architecture.md:\n" + "\n".join(wrong)


def test_no_import_cycles():
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                walk(nxt)
        path.pop()
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            walk(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_rules_are_a_layering():
    """The allowed imports themselves form no cycle between rooms."""
    seen: dict[str, int] = {}

    def walk(r: str, trail: tuple[str, ...]) -> None:
        assert r not in trail, " -> ".join((*trail, r))
        for nxt in ALLOWED[r]:
            walk(nxt, (*trail, r))

    for r in ALLOWED:
        walk(r, ())
    assert not seen


STORE_WRITES = {"create_handle", "delete_handle", "add_values", "modify_values", "remove_values",
                "home_prefix", "unhome_prefix", "load", "load_rows"}  # fmt: skip
WRITE_PATH = {"idnode.service.admin"}  # the one module that writes identifiers to the store


def test_only_the_write_service_writes_identifiers():
    """Every identifier write goes through ``AdminService`` (its policies, history, audit and
    statistics); a call like ``something.store.create_handle(...)`` elsewhere bypasses them."""
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if room(module) == "store" or module in WRITE_PATH:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            target = node.func.value
            named = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
            if node.func.attr in STORE_WRITES and "store" in named:
                wrong.append(f"{module}:{node.lineno}: {named}.{node.func.attr}")
    assert not wrong, "identifier writes outside the write service:\n" + "\n".join(wrong)
