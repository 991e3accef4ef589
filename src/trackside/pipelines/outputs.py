"""Step outputs: `::output name=value` lines, and `${{ ... }}` substitution into later steps.

Expressions are `params.NAME` and `jobs.JOB.outputs.KEY` (more `.KEY`s walk into a JSON output). A
string that is exactly one expression takes the value as it is (a number stays a number in a call
payload); an expression inside a longer string is replaced by its text (JSON for objects and lists).
Substitution applies to a call step's payload, path and headers and to a step's `env`; never to `run`,
which is shell text (pass values through `env` instead: no quoting mistakes, no injection).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from trackside.errors import InvalidInput

OUTPUTS_LIMIT = 256 * 1024  # bytes of JSON kept as one step's outputs (Argo's `result` limit)
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
_PARAM = re.compile(r"^params\.([A-Za-z_][A-Za-z0-9_-]*)$")
_OUTPUT = re.compile(r"^jobs\.([A-Za-z0-9][-A-Za-z0-9_.]*?)\.outputs\.([^.\s]+(?:\.[^.\s]+)*)$")
_OUTPUT_LINE = re.compile(r"^::output\s+([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$")


class SubstitutionError(Exception):
    """An expression that cannot be resolved at run time (a missing output)."""


@dataclass(frozen=True)
class Reference:
    kind: str  # "params" | "jobs"
    name: str  # param name, or job name
    path: tuple[str, ...] = ()  # output key and deeper keys

    @property
    def text(self) -> str:
        if self.kind == "params":
            return f"params.{self.name}"
        return f"jobs.{self.name}.outputs.{'.'.join(self.path)}"


def parse_expression(text: str) -> Reference:
    param = _PARAM.match(text)
    if param:
        return Reference("params", param.group(1))
    output = _OUTPUT.match(text)
    if output:
        return Reference("jobs", output.group(1), tuple(output.group(2).split(".")))
    raise InvalidInput(f"${{{{ {text} }}}} is not an expression: use params.NAME or jobs.JOB.outputs.KEY")


def references(value: Any) -> Iterator[Reference]:
    """Every expression in a JSON value (strings, recursively)."""
    if isinstance(value, str):
        for match in EXPRESSION.finditer(value):
            yield parse_expression(match.group(1))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from references(key)
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def _lookup(ref: Reference, params: Mapping[str, Any], outputs: Mapping[str, Mapping[str, Any]]) -> Any:
    if ref.kind == "params":
        if ref.name not in params:
            raise SubstitutionError(f"{ref.text} is not set")
        return params[ref.name]
    value: Any = outputs.get(ref.name)
    if value is None:
        raise SubstitutionError(f"{ref.text} is not set: job {ref.name} has no outputs")
    for key in ref.path:
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise SubstitutionError(f"{ref.text} is not set")
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def substitute(value: Any, params: Mapping[str, Any], outputs: Mapping[str, Mapping[str, Any]]) -> Any:
    """`value` with every expression replaced; raises SubstitutionError naming a missing one."""
    if isinstance(value, str):
        whole = EXPRESSION.fullmatch(value.strip())
        if whole:
            return _lookup(parse_expression(whole.group(1)), params, outputs)
        return EXPRESSION.sub(lambda m: _as_text(_lookup(parse_expression(m.group(1)), params, outputs)), value)
    if isinstance(value, Mapping):
        return {substitute(k, params, outputs): substitute(v, params, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(item, params, outputs) for item in value]
    return value


def substitute_text(value: str, params: Mapping[str, Any], outputs: Mapping[str, Mapping[str, Any]]) -> str:
    """Substitution where the result must be text (env values, paths, headers)."""
    return _as_text(substitute(value, params, outputs))


def parse_output_lines(lines: Iterator[str] | list[str]) -> dict[str, str]:
    """`::output name=value` lines of a step's log; a later line for a name wins."""
    found: dict[str, str] = {}
    for line in lines:
        match = _OUTPUT_LINE.match(line.rstrip("\r\n"))
        if match:
            found[match.group(1)] = match.group(2)
    return found


def capped(outputs: dict[str, Any]) -> dict[str, Any]:
    """Outputs as stored: refused (an error) past OUTPUTS_LIMIT, so a step never loses part of them silently."""
    size = len(json.dumps(outputs))
    if size > OUTPUTS_LIMIT:
        raise SubstitutionError(f"outputs are {size} bytes, more than the {OUTPUTS_LIMIT} allowed")
    return outputs
