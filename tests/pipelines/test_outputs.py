"""`::output` lines and `${{ }}` substitution."""

from __future__ import annotations

import pytest

from trackside.pipelines.outputs import SubstitutionError, parse_output_lines, substitute, substitute_text

PARAMS = {"url": "https://example.org/a.png", "n": 3}
OUTPUTS = {"add": {"result": 42, "deep": {"list": [1, {"x": "y"}]}}, "shell": {"name": "value with = sign"}}


def test_output_lines_become_outputs_and_a_later_line_wins() -> None:
    lines = ["hello", "::output a=1", "::output name=value with = sign", "::output a=2", ":: output b=no"]
    assert parse_output_lines(lines) == {"a": "2", "name": "value with = sign"}


def test_a_whole_string_expression_keeps_the_value_s_type() -> None:
    payload = {"a": "${{ jobs.add.outputs.result }}", "b": "${{params.n}}", "c": ["${{ jobs.add.outputs.deep }}"]}
    assert substitute(payload, PARAMS, OUTPUTS) == {"a": 42, "b": 3, "c": [{"list": [1, {"x": "y"}]}]}


def test_expressions_inside_text_are_replaced_by_their_text() -> None:
    assert substitute_text("got ${{ jobs.add.outputs.result }} from ${{ params.url }}", PARAMS, OUTPUTS) == (
        "got 42 from https://example.org/a.png"
    )
    assert substitute_text("${{ jobs.add.outputs.deep.list.1.x }}", PARAMS, OUTPUTS) == "y"
    assert substitute_text("${{ jobs.add.outputs.deep }}", PARAMS, OUTPUTS) == '{"list": [1, {"x": "y"}]}'


def test_a_missing_output_is_an_error_that_names_it() -> None:
    with pytest.raises(SubstitutionError, match="jobs.add.outputs.missing is not set"):
        substitute("${{ jobs.add.outputs.missing }}", PARAMS, OUTPUTS)
    with pytest.raises(SubstitutionError, match="job skipped has no outputs"):
        substitute("${{ jobs.skipped.outputs.x }}", PARAMS, OUTPUTS)
