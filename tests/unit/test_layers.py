"""amongo's layer rules, read from its own imports (ARCHITECTURE.md, "Layers").

Every ``import`` statement in ``amongo/`` counts: module level, inside functions, and under
``if TYPE_CHECKING:`` (a type-only import is still a dependency of the design). An edge goes
from the importing module to each amongo module it names; ``from amongo.topology import sdam``
is an edge to ``amongo.topology.sdam`` and ``from amongo.topology import WRITABLE`` an edge to
the package ``amongo.topology``. Parent packages a dotted import executes implicitly are not
edges (``amongo/__init__.py`` re-exports the facades; counting it would make every module
depend on every other).

The rules:

* the engine (``amongo/engine/`` when it exists, and the executor, session and operations
  modules wherever they live) imports no facade module;
* no import cycle touches the engine, ``amongo/wire/`` or ``amongo/topology/``;
* the pure modules (``wire/*``, ``topology/description``, ``topology/sdam``,
  ``topology/selection``, ``uri``, operations, the server-errors module) import no ``asyncio``,
  directly or through another amongo module.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Set, Tuple

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "amongo"

# Modules the user talks to. ``client_bulk`` is listed whole: its facade part (the
# ``bulk_write`` entry point) lives there with the planning the engine will take over.
FACADES = frozenset(
    f"amongo.{name}"
    for name in (
        "client", "database", "collection", "cursor", "command_cursor", "change_stream", "gridfs",
        "client_bulk", "motor_asyncio", "motor_tornado", "motor_core", "motor_gridfs",
        "_motor_package", "_motor_switch", "aiohttp", "web", "_web_common",
    )
)
# Module names (last dotted part) that are engine wherever they live.
ENGINE_NAMES = frozenset({"executor", "session", "sessions", "operations", "operation"})
# Pure modules by name; ``*`` = every module of a package.
PURE = (
    "amongo.wire",
    "amongo.wire.*",
    "amongo.topology",
    "amongo.topology.types",
    "amongo.topology.description",
    "amongo.topology.sdam",
    "amongo.topology.selection",
    "amongo.uri",
    "amongo.credentials",
    "amongo.handshake",
)
# Also pure wherever they live (top level or in the engine package): the operations (a
# module or a package of them) and the server-errors module.
PURE_NAMES = frozenset({"operations", "operation", "ops", "errors", "server_errors", "_errors"})
ASYNC_MODULES = ("asyncio",)



def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> Dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(module: str, is_package: bool, level: int, target: Optional[str]) -> str:
    """The absolute name of a ``from <level dots><target> import`` in *module*."""
    if level == 0:
        return target or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(name: str, path: Path, known: Iterable[str]) -> Set[str]:
    """Every module *name* imports (amongo modules resolved to the most specific known module;
    other top-level modules such as ``asyncio`` as written)."""
    known = set(known)
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: Set[str] = set()

    def add(dotted: str) -> None:
        if not dotted.startswith("amongo"):
            found.add(dotted)
            return
        parts = dotted.split(".")
        while parts and ".".join(parts) not in known:
            parts.pop()
        if parts:
            found.add(".".join(parts))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in known else base)
    found.discard(name)
    return found


def import_graph() -> Dict[str, Set[str]]:
    """amongo module -> the modules it imports (amongo and third-party alike)."""
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _internal(graph: Dict[str, Set[str]]) -> Dict[str, Set[str]]:
    return {m: {t for t in targets if t in graph} for m, targets in graph.items()}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    graph = _internal(graph)
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    result: List[List[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        # Iterative Tarjan: amongo is small, but recursion depth should not be a concern.
        work: List[Tuple[str, Iterable[str]]] = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == node:
                            break
                    if len(component) > 1:
                        result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(result)


def _cycle_path(graph: Dict[str, Set[str]], component: List[str]) -> str:
    """One concrete loop through *component*'s first module, for the failure message."""
    graph = _internal(graph)
    members = set(component)
    start = component[0]
    # Breadth-first search back to start inside the component.
    prev: Dict[str, str] = {}
    frontier = [start]
    seen = {start}
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [start]
                    while node != start:
                        path.append(node)
                        node = prev[node]
                    path.append(start)
                    path.reverse()
                    return " -> ".join(path)
                if child not in seen:
                    seen.add(child)
                    prev[child] = node
                    nxt.append(child)
        frontier = nxt
    return start


def _describe(graph: Dict[str, Set[str]], components: List[List[str]]) -> str:
    lines = ["import cycles remaining:"]
    for component in components:
        lines.append(f"  {len(component)} modules: {', '.join(component)}")
        lines.append(f"    e.g. {_cycle_path(graph, component)}")
    return "\n".join(lines)


def is_engine(module: str) -> bool:
    return module == "amongo.engine" or module.startswith("amongo.engine.") or (
        module.rsplit(".", 1)[-1] in ENGINE_NAMES
    )


def is_server_errors(module: str) -> bool:
    """The pure server-errors module (error-code sets, command error mapping)."""
    return module.rsplit(".", 1)[-1] in {"errors", "server_errors", "_errors"} and is_pure(module)


def is_facade(module: str) -> bool:
    # (amongo.asynchronous: the PyMongo-style API, a facade package as a whole)
    return module in FACADES or module == "amongo.asynchronous" or module.startswith("amongo.asynchronous.")


def is_pure(module: str) -> bool:
    parts = module.split(".")
    if parts[0] == "amongo" and (
        (len(parts) == 2 and parts[1] in PURE_NAMES)
        or (len(parts) >= 3 and parts[1] == "engine" and parts[2] in PURE_NAMES)
    ):
        return True
    for pattern in PURE:
        if pattern.endswith(".*"):
            if module.startswith(pattern[:-1]):
                return True
        elif module == pattern:
            return True
    return False


def _lower(module: str) -> bool:
    return module.startswith(("amongo.wire", "amongo.topology"))


# Below the engine: connection, pool, auth, URI, monitoring and the rest of the plumbing.
LOWER = frozenset(
    f"amongo.{name}"
    for name in (
        "connection", "protocol", "pool", "handshake", "auth", "auth_aws", "auth_oidc",
        "credentials", "uri", "srv", "_http", "monitoring", "_logging", "_csot", "_version",
        "_typing",
    )
)
# Modules that belong with the facades for the cycle rule (shared facade helpers).
FACADE_HELPERS = frozenset({"amongo._common", "amongo.client_options"})


def is_lower(module: str) -> bool:
    return _lower(module) or module in LOWER


# -- the rules, as functions returning the violations (tested below on small graphs too) ---


def engine_facade_imports(graph: Dict[str, Set[str]]) -> List[Tuple[str, str]]:
    return sorted(
        (m, t) for m, targets in graph.items() if is_engine(m) for t in targets if is_facade(t)
    )


def cycles_touching(graph: Dict[str, Set[str]], which: Callable[[str], bool]) -> List[List[str]]:
    return [c for c in cycles(graph) if any(which(m) for m in c)]


def pure_asyncio_imports(graph: Dict[str, Set[str]]) -> List[Tuple[str, List[str]]]:
    """(pure module, the import chain that reaches asyncio) for each offending module."""
    internal = _internal(graph)
    bad = []
    for module in sorted(graph):
        if not is_pure(module):
            continue
        # Breadth-first: the shortest chain module -> ... -> asyncio.
        prev: Dict[str, Optional[str]] = {module: None}
        frontier = [module]
        chain: Optional[List[str]] = None
        while frontier and chain is None:
            nxt = []
            for node in frontier:
                if any(t == a or t.startswith(a + ".") for t in graph[node] for a in ASYNC_MODULES):
                    chain = ["asyncio"]
                    cur: Optional[str] = node
                    while cur is not None:
                        chain.append(cur)
                        cur = prev[cur]
                    chain.reverse()
                    break
                for child in sorted(internal[node]):
                    if child not in prev:
                        prev[child] = node
                        nxt.append(child)
            frontier = nxt
        if chain is not None:
            bad.append((module, chain))
    return bad


# -- the analyser itself ------------------------------------------------------------------


def test_analyser_counts_every_kind_of_import(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "import amongo.wire.message\n"
        "from amongo.topology import sdam, WRITABLE\n"
        "from .pool import Pool\n"
        "if TYPE_CHECKING:\n"
        "    from amongo.client import AsyncIOMotorClient\n"
        "def f():\n"
        "    import asyncio\n"
        "    from . import cursor\n"
    )
    known = {"amongo.wire.message", "amongo.topology", "amongo.topology.sdam", "amongo.pool",
             "amongo.client", "amongo.cursor", "amongo.executor"}
    found = _imports("amongo.executor", src, known)
    assert found == {"__future__", "typing", "amongo.wire.message", "amongo.topology",
                     "amongo.topology.sdam", "amongo.pool", "amongo.client", "asyncio",
                     "amongo.cursor"}


def test_rules_catch_what_they_should() -> None:
    graph = {
        "amongo.engine.executor": {"amongo.client", "amongo.pool"},
        "amongo.client": {"amongo.engine.executor"},
        "amongo.pool": {"asyncio"},
        "amongo.wire.message": {"amongo.wire.compression"},
        "amongo.wire.compression": {"amongo.wire.message", "amongo.pool"},
    }
    assert engine_facade_imports(graph) == [("amongo.engine.executor", "amongo.client")]
    assert cycles(graph) == [
        ["amongo.client", "amongo.engine.executor"],
        ["amongo.wire.compression", "amongo.wire.message"],
    ]
    assert cycles_touching(graph, _lower) == [["amongo.wire.compression", "amongo.wire.message"]]
    assert pure_asyncio_imports(graph) == [
        ("amongo.wire.compression", ["amongo.wire.compression", "amongo.pool", "asyncio"]),
        ("amongo.wire.message", ["amongo.wire.message", "amongo.wire.compression", "amongo.pool",
                                 "asyncio"]),
    ]
    described = _describe(graph, cycles(graph))
    assert "amongo.client -> amongo.engine.executor -> amongo.client" in described
    assert "amongo.wire.compression -> amongo.wire.message -> amongo.wire.compression" in described


def test_module_classification() -> None:
    assert is_engine("amongo.engine.client_core") and is_engine("amongo.executor")
    assert is_engine("amongo.session") and is_engine("amongo.engine.operations.insert")
    assert not is_facade("amongo.engine.client") and is_facade("amongo.collection")
    assert is_pure("amongo.engine.operations.insert") and is_pure("amongo.operations")
    assert is_pure("amongo.engine.errors") and is_server_errors("amongo.engine.errors")
    assert is_pure("amongo.wire.header") and is_pure("amongo.topology.selection")
    assert not is_pure("amongo.topology.monitor") and not is_pure("amongo.engine.executor")
    assert is_lower("amongo.topology.sync_probe") and is_lower("amongo.pool")
    assert not is_lower("amongo.executor") and not is_lower("amongo.client")


def test_the_graph_sees_amongo() -> None:
    graph = import_graph()
    # Sanity: the analyser finds the modules and the edges everyone knows about.
    assert "amongo.topology.topology" in graph and "amongo.wire.message" in graph
    assert "amongo.pool" in graph["amongo.topology.topology"]
    assert "asyncio" in graph["amongo.pool"]
    assert any(is_facade(m) for m in graph) and any(is_engine(m) for m in graph)


# -- the rules on amongo --------------------------------------------------------------------


def test_engine_imports_no_facade() -> None:
    graph = import_graph()
    bad = engine_facade_imports(graph)
    assert not bad, "engine modules importing facades:\n" + "\n".join(
        f"  {m} imports {t}" for m, t in bad
    ) + "\n" + _describe(graph, cycles(graph))


def test_no_cycle_touches_the_engine() -> None:
    graph = import_graph()
    bad = cycles_touching(graph, is_engine)
    assert not bad, _describe(graph, bad)


def test_no_cycle_touches_wire_or_topology() -> None:
    graph = import_graph()
    bad = cycles_touching(graph, _lower)
    assert not bad, _describe(graph, bad)


def test_lower_pure_modules_import_no_asyncio() -> None:
    """wire/*, topology description/SDAM/selection, uri, the handshake: no asyncio."""
    graph = import_graph()
    bad = [(m, chain) for m, chain in pure_asyncio_imports(graph) if not is_engine(m)]
    assert not bad, "pure modules reaching asyncio:\n" + "\n".join(
        f"  {m}: {' -> '.join(chain)}" for m, chain in bad
    )


def test_engine_pure_modules_import_no_asyncio() -> None:
    """operations and the server-errors module: no asyncio."""
    graph = import_graph()
    bad = [(m, chain) for m, chain in pure_asyncio_imports(graph) if is_engine(m)]
    assert not bad, "pure modules reaching asyncio:\n" + "\n".join(
        f"  {m}: {' -> '.join(chain)}" for m, chain in bad
    )


def test_lower_layers_import_no_facade_or_engine() -> None:
    """wire/, topology/, connection, protocol, pool, auth, uri, srv, ...: never a facade,
    never the engine (except the pure server-errors module, which SDAM and the pool
    classify errors with)."""
    graph = import_graph()
    bad = sorted(
        (m, t)
        for m in graph
        if is_lower(m)
        for t in graph[m]
        if is_facade(t) or (is_engine(t) and not is_server_errors(t))
    )
    assert not bad, "\n".join(f"  {m} imports {t}" for m, t in bad)


def test_remaining_cycles_are_among_facades() -> None:
    """Cycles may remain only among facade modules (each explained in ARCHITECTURE.md)."""
    graph = import_graph()
    bad = [c for c in cycles(graph) if not all(is_facade(m) or m in FACADE_HELPERS for m in c)]
    assert not bad, _describe(graph, bad)


def test_no_cycle_outside_the_upper_half() -> None:
    """Every cycle today is the upper-half knot; nothing below the executor is in one."""
    graph = import_graph()
    bad = [c for c in cycles(graph) if any(is_lower(m) for m in c)]
    assert not bad, _describe(graph, bad)
