"""The portfolio's column filters: Racetrack's operators, as one small language.

An expression is tested against one cell (shown as text; numbers compare as numbers):

| expression | matches a cell that... |
|---|---|
| `abc` | contains `abc` (any case) |
| `ab*c` | matches the whole pattern, `*` standing for any text (any case) |
| `=abc` | equals `abc` (any case; numbers numerically); `=` alone: is empty |
| `<3` `<=3` `>3` `>=3` | is a number in that relation |
| `{a,b,c}` | equals one of the items |
| `!expr` | does not match `expr` |
| `[empty]` / `[nonempty]` | is empty / is not |
| `rgx:pattern` | contains a match of the Python regular expression |
| `a && b`, `a \\|\\| b` | matches both / either (`&&` binds tighter; no parentheses) |

A malformed expression raises InvalidInput naming what is wrong, for the form to show by its field.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from trackside.errors import InvalidInput

Predicate = Callable[[Any], bool]
_COMPARISONS: tuple[tuple[str, Callable[[float, float], bool]], ...] = (
    ("<=", lambda a, b: a <= b),
    (">=", lambda a, b: a >= b),
    ("<", lambda a, b: a < b),
    (">", lambda a, b: a > b),
)


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ", ".join(cell_text(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cell_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None


def _number(text: str, operator: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise InvalidInput(f"'{operator}' needs a number, got {text.strip()!r}") from None


def _equals(expected: str) -> Predicate:
    wanted = expected.strip()
    wanted_number = cell_number(wanted) if wanted else None

    def test(value: Any) -> bool:
        if wanted_number is not None:
            number = cell_number(value)
            if number is not None:
                return number == wanted_number
        return cell_text(value).strip().lower() == wanted.lower()

    return test


def _atom(text: str) -> Predicate:
    term = text.strip()
    if term.startswith("!"):
        inner = _atom(term[1:])
        return lambda value: not inner(value)
    if term == "[empty]":
        return lambda value: cell_text(value).strip() == ""
    if term == "[nonempty]":
        return lambda value: cell_text(value).strip() != ""
    if term.startswith("rgx:"):
        try:
            pattern = re.compile(term[4:])
        except re.error as exc:
            raise InvalidInput(f"invalid regular expression {term[4:]!r}: {exc}") from None
        return lambda value: pattern.search(cell_text(value)) is not None
    if term.startswith("{"):
        if not term.endswith("}"):
            raise InvalidInput(f"a set must end with '}}': {term!r}")
        options = [_equals(item) for item in term[1:-1].split(",") if item.strip()]
        return lambda value: any(option(value) for option in options)
    for operator, compare in _COMPARISONS:
        if term.startswith(operator):
            bound = _number(term[len(operator) :], operator)

            def test(value: Any, compare: Callable[[float, float], bool] = compare, bound: float = bound) -> bool:
                number = cell_number(value)
                return number is not None and compare(number, bound)

            return test
    if term.startswith("="):
        return _equals(term[1:])
    if "*" in term:
        glob = term.lower()
        return lambda value: fnmatch.fnmatchcase(cell_text(value).lower(), glob)
    needle = term.lower()
    return lambda value: needle in cell_text(value).lower()


def parse_filter(expression: str) -> Predicate:
    """A predicate for one column's filter expression (an empty expression matches everything)."""
    if not expression.strip():
        return lambda _value: True
    alternatives = []
    for alternative in expression.split("||"):
        terms = [part for part in alternative.split("&&")]
        if any(not part.strip() for part in terms):
            raise InvalidInput(f"an operand of '&&' or '||' is missing in {expression.strip()!r}")
        alternatives.append([_atom(part) for part in terms])
    return lambda value: any(all(term(value) for term in terms) for terms in alternatives)
