"""Checks a call's JSON arguments against the endpoint's annotations before any user code runs.

Racetrack's runner passes the JSON body to `perform(**body)` unchecked, so a list given a string
fails somewhere inside the job (a 500, or a wrong answer). Here each annotated parameter is turned
once, at load time, into the set of JSON value types it accepts (`float` accepts JSON integers and
numbers, `list[float]` an array of them, `Optional[X]` also null, ...); a request whose value has
another type is a 400 naming the argument and the expected type. Nothing is converted: the values
reach the job exactly as `json.loads` made them, so `40 + 2` is still `42`, not `42.0`.

Checks are exact-type lookups in small frozensets (JSON decoding only makes dict, list, str, int,
float, bool and None), so a call pays a few tens of nanoseconds per annotated argument. Annotations
that say nothing about JSON shapes (`Any`, classes of the job's own, numpy types, `Literal`, type
variables, unresolvable strings) are not checked. Missing and unknown arguments are left to
Python's own call binding, which fails before the function body runs; `describe_binding_error`
then words the 400.
"""

from __future__ import annotations

import collections.abc
import inspect
import json
import types
import typing
from collections.abc import Callable
from typing import Any

NoneType = type(None)
_NUMBER = frozenset((int, float))
_SCALARS: dict[Any, frozenset[type]] = {
    int: frozenset((int,)),
    float: _NUMBER,
    bool: frozenset((bool,)),
    str: frozenset((str,)),
    NoneType: frozenset((NoneType,)),
    None: frozenset((NoneType,)),
}
_ARRAYS = {
    list,
    tuple,
    set,
    frozenset,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Iterable,
    collections.abc.Collection,
    collections.abc.Set,
    collections.abc.MutableSet,
}
_OBJECTS = {dict, collections.abc.Mapping, collections.abc.MutableMapping}
_JSON_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    NoneType: "null",
}


class Check(typing.NamedTuple):
    """One annotated parameter: the JSON types it takes, and those of its items (arrays, objects)."""

    name: str
    allowed: frozenset[type]
    items: frozenset[type] | None
    expected: str


def type_text(annotation: Any) -> str:
    """`float`, `list[float]`, `Optional[int]`: the annotation as a person writes it."""
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("NoneType", "None")


def _spec(annotation: Any) -> tuple[frozenset[type], frozenset[type] | None] | None:
    """(allowed JSON types, allowed item types or None), or None when the annotation isn't checked."""
    scalar = _SCALARS.get(annotation) if _hashable(annotation) else None
    if scalar is not None:
        return scalar, None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _spec(args[0])
    if origin is typing.Union or origin is types.UnionType:
        allowed: set[type] = set()
        item_sets: list[frozenset[type] | None] = []
        for arg in args:
            part = _spec(arg)
            if part is None:
                return None
            allowed |= part[0]
            if part[0] != _SCALARS[None]:
                item_sets.append(part[1])
        items = item_sets[0] if len(item_sets) == 1 else None
        return frozenset(allowed), items
    if annotation in _ARRAYS or origin in _ARRAYS:
        item: Any = None
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                item = args[0]
        elif len(args) == 1:
            item = args[0]
        return frozenset((list,)), _item_spec(item)
    if annotation in _OBJECTS or origin in _OBJECTS:
        return frozenset((dict,)), _item_spec(args[1] if len(args) == 2 else None)
    return None


def _item_spec(annotation: Any) -> frozenset[type] | None:
    """Items are checked one level deep, and only when they are plain scalars (or unions of them)."""
    if annotation is None:
        return None
    part = _spec(annotation)
    if part is None or part[1] is not None or list in part[0] or dict in part[0]:
        return None
    return part[0]


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations; when some can't be resolved, each one that can (the rest go unchecked)."""
    try:
        return typing.get_type_hints(fn)
    except Exception:
        pass
    hints: dict[str, Any] = {}
    namespace = dict(getattr(fn, "__globals__", {}))
    for name, value in getattr(fn, "__annotations__", {}).items():
        if not isinstance(value, str):
            hints[name] = value
            continue
        try:
            hints[name] = eval(value, namespace)  # what get_type_hints does, one annotation at a time
        except Exception:
            continue
    return hints


class Signature:
    """What a call to one endpoint needs checked, derived once from its signature."""

    __slots__ = ("endpoint", "checks", "params", "var_keyword", "allowed", "item_checks", "expected")

    def __init__(self, fn: Callable[..., Any], endpoint: str) -> None:
        self.endpoint = endpoint
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            sig = None
        self.params: dict[str, inspect.Parameter] = {}
        self.var_keyword = sig is None
        checks: list[Check] = []
        hints = _hints(fn) if sig is not None else {}
        for param in sig.parameters.values() if sig is not None else ():
            if param.kind is param.VAR_KEYWORD:
                self.var_keyword = True
                continue
            if param.kind in (param.VAR_POSITIONAL, param.POSITIONAL_ONLY):
                continue
            self.params[param.name] = param
            annotation = hints.get(param.name, param.annotation)
            if annotation is param.empty:
                continue
            spec = _spec(annotation)
            if spec is None:
                continue
            allowed, items = spec
            if param.default is None:  # `x: int = None` takes null too
                allowed = allowed | _SCALARS[None]
            written = param.annotation if isinstance(param.annotation, str) else type_text(annotation)
            checks.append(Check(param.name, allowed, items, written))
        self.checks: tuple[Check, ...] = tuple(checks)
        # The same, laid out for the per-request check.
        self.allowed: dict[str, frozenset[type]] = {c.name: c.allowed for c in checks}
        self.item_checks: tuple[tuple[str, frozenset[type]], ...] = tuple(
            (c.name, c.items) for c in checks if c.items is not None
        )
        self.expected: dict[str, str] = {c.name: c.expected for c in checks}

    def check(self, kwargs: dict[str, Any]) -> str | None:
        """The 400 message when an argument's JSON type doesn't fit its annotation, else None.

        The common case costs one dict lookup and one frozenset lookup per argument sent.
        """
        allowed_of = self.allowed
        for name, value in kwargs.items():
            allowed = allowed_of.get(name)
            if allowed is not None and type(value) not in allowed:
                return self._mismatch(name, value)
        for name, items in self.item_checks:
            value = kwargs.get(name)
            if type(value) is list:
                for item in value:
                    if type(item) not in items:
                        return self._bad_item(name, value, items)
            elif type(value) is dict:
                for item in value.values():
                    if type(item) not in items:
                        return self._bad_item(name, value, items)
        return None

    def _mismatch(self, name: str, value: Any) -> str:
        return f"invalid argument {name!r} for {self.endpoint}: expected {self.expected[name]}, got {_shown(value)}"

    def _bad_item(self, name: str, value: Any, items: frozenset[type]) -> str:
        expected = self.expected[name]
        pairs = value.items() if type(value) is dict else enumerate(value)
        for key, item in pairs:
            if type(item) not in items:
                where = f"[{json.dumps(key)}]" if type(value) is dict else f"[{key}]"
                return (
                    f"invalid argument {name!r} for {self.endpoint}: expected {expected}, "
                    f"but {name}{where} is {_shown(item)}"
                )
        return f"invalid argument {name!r} for {self.endpoint}: expected {expected}"  # pragma: no cover

    def describe_binding_error(self, kwargs: dict[str, Any]) -> str | None:
        """Why `fn(**kwargs)` can't bind (missing or unknown arguments), or None when it can."""
        problems: list[str] = []
        missing = [p for name, p in self.params.items() if p.default is p.empty and name not in kwargs]
        for param in missing:
            problems.append(f"missing required argument {param.name!r} ({self._expected(param)})")
        if not self.var_keyword:
            unknown = [name for name in kwargs if name not in self.params]
            if unknown:
                accepted = ", ".join(self.params) or "no arguments"
                names = ", ".join(repr(n) for n in unknown)
                word = "argument" if len(unknown) == 1 else "arguments"
                problems.append(f"unexpected {word} {names} ({self.endpoint} takes: {accepted})")
        if not problems:
            return None
        return f"invalid arguments for {self.endpoint}: " + "; ".join(problems)

    def _expected(self, param: inspect.Parameter) -> str:
        for check in self.checks:
            if check.name == param.name:
                return check.expected
        return "any type" if param.annotation is param.empty else type_text(param.annotation)


def _shown(value: Any) -> str:
    kind = _JSON_NAMES.get(type(value), type(value).__name__)
    if value is None:
        return "null"
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{kind} {text}"
