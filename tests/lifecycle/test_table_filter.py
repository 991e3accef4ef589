"""The portfolio's filter language: each of Racetrack's operators, their combinations, and errors."""

from __future__ import annotations

import pytest

from trackside.errors import InvalidInput
from trackside.lifecycle.table_filter import parse_filter


def matches(expression: str, values: list[object]) -> list[object]:
    test = parse_filter(expression)
    return [v for v in values if test(v)]


NAMES = ["adder", "Adder-Two", "multiplier", "", None]
NUMBERS = [0, 0.5, 1, 2.5, 10, None, "7"]


@pytest.mark.parametrize(
    ("expression", "values", "expected"),
    [
        ("", NAMES, NAMES),
        ("add", NAMES, ["adder", "Adder-Two"]),  # contains, any case
        ("=adder", NAMES, ["adder"]),
        ("=", NAMES, ["", None]),
        ("add*", NAMES, ["adder", "Adder-Two"]),
        ("*two", NAMES, ["Adder-Two"]),
        ("*er", NAMES, ["adder", "multiplier"]),  # a whole-value pattern, unlike "contains"
        ("a*r", NAMES, ["adder"]),
        ("!add", NAMES, ["multiplier", "", None]),
        ("{adder, multiplier}", NAMES, ["adder", "multiplier"]),
        ("[empty]", NAMES, ["", None]),
        ("[nonempty]", NAMES, ["adder", "Adder-Two", "multiplier"]),
        ("![empty]", NAMES, ["adder", "Adder-Two", "multiplier"]),
        ("rgx:^[a-z]+$", NAMES, ["adder", "multiplier"]),
        ("add || mult", NAMES, ["adder", "Adder-Two", "multiplier"]),
        ("add && !two", NAMES, ["adder"]),
        ("mult || add && !two", NAMES, ["adder", "multiplier"]),  # && binds tighter
        ("<1", NUMBERS, [0, 0.5]),
        ("<=1", NUMBERS, [0, 0.5, 1]),
        (">2.5", NUMBERS, [10, "7"]),
        (">=2.5", NUMBERS, [2.5, 10, "7"]),
        ("=1", NUMBERS, [1]),
        ("=1.0", NUMBERS, [1]),  # numbers compare as numbers
        (">0 && <10", NUMBERS, [0.5, 1, 2.5, "7"]),
        ("{0, 10}", NUMBERS, [0, 10]),
    ],
)
def test_each_operator_selects_the_cells_it_describes(
    expression: str, values: list[object], expected: list[object]
) -> None:
    assert matches(expression, values) == expected


def test_numeric_comparisons_never_match_text_or_empty_cells() -> None:
    assert matches(">0", ["abc", "", None, True]) == []


def test_lists_match_on_any_of_their_items_joined_as_text() -> None:
    assert matches("never called", [["failing", "never called, updated 3 days ago"], []]) == [
        ["failing", "never called, updated 3 days ago"]
    ]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("<abc", "'<' needs a number, got 'abc'"),
        (">=", "'>=' needs a number"),
        ("rgx:(", "invalid regular expression '('"),
        ("{a,b", "a set must end with '}'"),
        ("a ||", "an operand of '&&' or '||' is missing"),
        ("&& b", "an operand of '&&' or '||' is missing"),
    ],
)
def test_a_malformed_expression_is_a_clear_error(expression: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace("|", r"\|")):
        parse_filter(expression)
