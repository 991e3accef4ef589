"""Checks a python3 job's entrypoint at build time, without importing it.

A missing file or class would otherwise only show up when the deployed job fails to start; parsing
with `ast` finds it in milliseconds and without running user code on the build host. The rule for
which class is served is the runtime's (Racetrack's): the named one, else the only class defined in
the module.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from trackside.build.confined import Escape, resolve_beneath
from trackside.errors import BuildFailed


def resolve_inside(workspace: Path, relative: str, what: str) -> Path:
    """`workspace / relative` with its links followed, refusing any that leave the job's source.

    Resolved step by step beneath the job's directory (`confined.resolve_beneath`), never with
    `realpath`, which a path over PATH_MAX fools; the result holds no link, so reading it reads what
    was checked.
    """
    try:
        path = resolve_beneath(workspace, relative)
    except Escape as exc:
        raise BuildFailed(f"{what} {relative!r} must be a path inside the job's source ({exc})") from None
    if path == Path(os.path.realpath(workspace)):
        raise BuildFailed(f"{what} {relative!r} must be a path inside the job's source")
    return path


def check_entrypoint(workspace: Path, entrypoint_path: str, entrypoint_class: str | None) -> str:
    """Return the class the runtime will serve; BuildFailed says what is missing otherwise."""
    path = resolve_inside(workspace, entrypoint_path, "jobtype_extra.entrypoint_path")
    if not path.is_file():
        raise BuildFailed(f"entrypoint file {entrypoint_path!r} not found in the job's source")
    try:
        tree = ast.parse(path.read_bytes(), filename=entrypoint_path)
    except SyntaxError as exc:
        raise BuildFailed(
            f"entrypoint file {entrypoint_path!r} has a syntax error at line {exc.lineno}: {exc.msg}"
        ) from exc
    except ValueError as exc:  # e.g. null bytes
        raise BuildFailed(f"entrypoint file {entrypoint_path!r} is not Python source: {exc}") from exc
    defined = _module_level_classes(tree)
    if entrypoint_class:
        others = _other_module_names(tree)
        if entrypoint_class in defined or entrypoint_class in others or "*" in others:
            return entrypoint_class
        found = ", ".join(defined) if defined else "none"
        raise BuildFailed(
            f"entrypoint class {entrypoint_class!r} not found in {entrypoint_path!r} (classes defined: {found})"
        )
    if len(defined) == 1:
        return defined[0]
    if not defined:
        raise BuildFailed(f"no class defined in entrypoint file {entrypoint_path!r}: the job's class must be there")
    raise BuildFailed(
        f"entrypoint file {entrypoint_path!r} defines several classes ({', '.join(defined)}): "
        "set jobtype_extra.entrypoint_class to pick one"
    )


def _module_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements run at import, including those inside module-level if/try/with blocks."""
    found: list[ast.stmt] = []
    for node in body:
        found.append(node)
        if isinstance(node, ast.If | ast.With):
            found += _module_statements(node.body)
            if isinstance(node, ast.If):
                found += _module_statements(node.orelse)
        elif isinstance(node, ast.Try):
            found += _module_statements(node.body)
            found += _module_statements(node.orelse)
            found += _module_statements(node.finalbody)
            for handler in node.handlers:
                found += _module_statements(handler.body)
    return found


def _module_level_classes(tree: ast.Module) -> list[str]:
    names: list[str] = []
    for node in _module_statements(tree.body):
        if isinstance(node, ast.ClassDef) and node.name not in names:
            names.append(node.name)
    return names


def _other_module_names(tree: ast.Module) -> set[str]:
    """Names bound by imports or assignments: a named class may be imported from another module."""
    names: set[str] = set()
    for node in _module_statements(tree.body):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names
