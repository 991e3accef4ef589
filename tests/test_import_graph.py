"""The import graph of `src/` stays one-way (docs/architecture.md, "Components and how data flows").

The graph is read from the source with `ast`, so the test needs nothing imported. Module-level
imports (those that run when a module is imported; not the ones under `if TYPE_CHECKING:` or inside
functions) must form no cycle. Some pairs of parts depend on each other in one direction only,
even counting imports made inside functions.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

# (lower, upper): `upper` may import `lower`, never the other way round.
ONE_WAY = [
    ("trackside.build", "trackside.infra"),
    ("trackside.infra.base", "trackside.plugins"),
    ("trackside.store.base", "trackside.store.models"),
    ("trackside.store.base", "trackside.store.auth_models"),
    ("trackside.lifecycle.pipeline", "trackside.lifecycle.deployer"),
    # The pipelines use the lifecycle's auth and app; `trackside.platform` mounts them on it.
    ("trackside.lifecycle", "trackside.pipelines"),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, *, lazy: bool) -> set[str]:
    """Modules of src/ that `module` imports: at import time, or (lazy) anywhere in it."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def targets(node: ast.Import | ast.ImportFrom) -> Iterator[str | None]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield _resolve(alias.name)
            return
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
        for alias in node.names:
            full = f"{base}.{alias.name}"
            yield full if full in MODULES else _resolve(base)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            deferred = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) or (
                isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            )
            if deferred:
                if lazy:
                    visit(child)
            elif isinstance(child, ast.Import | ast.ImportFrom):
                found.update(target for target in targets(child) if target)
            else:
                visit(child)

    visit(ast.parse(path.read_text()))
    found.discard(module)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def _inside(module: str, part: str) -> bool:
    return module == part or module.startswith(part + ".")


def test_the_graph_reader_finds_a_cycle_when_there_is_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back_at_import_time() -> None:
    graph = {module: _imports(module, lazy=False) for module in MODULES}
    assert _cycles(graph) == []


def _part(module: str) -> str:
    """The part (`trackside.lifecycle`, ...) a module belongs to: the package below the top one."""
    return ".".join(module.split(".")[:2])


def test_no_part_imports_itself_back_at_import_time() -> None:
    """The same rule a level up: between parts (`trackside.X` packages), counting every module in each."""
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        graph.setdefault(_part(module), set()).update(
            _part(target) for target in _imports(module, lazy=False) if _part(target) != _part(module)
        )
    assert _cycles(graph) == []


@pytest.mark.parametrize(("lower", "upper"), ONE_WAY)
def test_a_lower_part_never_imports_the_part_above_it(lower: str, upper: str) -> None:
    upward = [
        f"{module} -> {target}"
        for module in MODULES
        if _inside(module, lower)
        for target in _imports(module, lazy=True)
        if _inside(target, upper)
    ]
    assert upward == []
    downward = [m for m in MODULES if _inside(m, upper) and any(_inside(t, lower) for t in _imports(m, lazy=True))]
    assert downward, f"{upper} no longer imports {lower}: drop the pair from ONE_WAY"


@pytest.mark.parametrize(
    "module",
    [
        "trackside.store.models",
        "trackside.store.auth_models",
        "trackside.store.call_models",
        "trackside.plugins.engine",
    ],
)
def test_a_module_imports_on_its_own_in_a_fresh_interpreter(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


ROUTERS = ("trackside.lifecycle.api", "trackside.pipelines.api")
# What a router never imports: queries, sessions and tables belong to the lifecycle's services.
STORE_LAYER = ("sqlalchemy", "trackside.store", "trackside.pipelines.models")


def _imported_names(module: str) -> set[str]:
    """Every module name `module` imports, inside functions and `TYPE_CHECKING` blocks included."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_name_reader_sees_imports_everywhere_in_a_module() -> None:
    names = _imported_names("trackside.lifecycle.access")
    assert "sqlalchemy.select" in names
    assert "trackside.store.models.Job" in names


def _routers() -> list[str]:
    routers = [module for module in MODULES if any(_inside(module, part) for part in ROUTERS)]
    assert len(routers) > 10
    return routers


def _opened_sessions(module: str) -> list[int]:
    """The lines where `module` calls a `.session()` (a transaction of the store)."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(MODULES[module].read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "session"
    ]


def test_the_session_reader_finds_a_transaction() -> None:
    assert _opened_sessions("trackside.lifecycle.maintenance")


def test_routers_open_no_transaction() -> None:
    """Queries, audit records and permission checks run in services, which open their own transactions."""
    assert {module: lines for module in _routers() if (lines := _opened_sessions(module))} == {}


def test_routers_import_neither_sqlalchemy_nor_the_store() -> None:
    """Routers parse the request, call a service and shape the answer (docs/architecture.md)."""
    routers = _routers()
    found = [
        f"{module} imports {name}"
        for module in routers
        for name in sorted(_imported_names(module))
        if any(_inside(name, layer) for layer in STORE_LAYER)
    ]
    assert found == []
