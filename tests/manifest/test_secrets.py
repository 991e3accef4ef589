"""Client-side secret env files: .env parsing and lookup relative to the workdir."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from trackside.errors import InvalidInput
from trackside.manifest.load import parse_manifest
from trackside.manifest.secrets import load_secret_vars, parse_env_text

Write = Callable[[str, str], Path]


def test_env_text_syntax() -> None:
    text = """
# a comment
PLAIN=value
SPACED = padded value
export EXPORTED=1
SINGLE='a # not a comment'
SINGLE2='$HOME \\n stays'
DOUBLE="line1\\nline2 \\"quoted\\""
INLINE=value # comment
HASH=abc#def
EMPTY=
EMPTY_QUOTED=""
URL=postgres://u:p@h/db?x=1
"""
    assert parse_env_text(text, "s.env") == {
        "PLAIN": "value",
        "SPACED": "padded value",
        "EXPORTED": "1",
        "SINGLE": "a # not a comment",
        "SINGLE2": "$HOME \\n stays",
        "DOUBLE": 'line1\nline2 "quoted"',
        "INLINE": "value",
        "HASH": "abc#def",
        "EMPTY": "",
        "EMPTY_QUOTED": "",
        "URL": "postgres://u:p@h/db?x=1",
    }


def test_later_lines_override_earlier() -> None:
    assert parse_env_text("A=1\nA=2\n", "s.env") == {"A": "2"}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("NOEQUALS", "expected KEY=VALUE"),
        ("1BAD=x", "not a valid environment variable name"),
        ("Q='open", "unterminated"),
        ('Q="a" junk', "after the closing quote"),
        ("PORT=8080", "set by the platform"),
    ],
)
def test_bad_lines_name_file_and_line(line: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=rf"^s\.env:3: .*{problem}"):
        parse_env_text(f"# header\nOK=1\n{line}\n", "s.env")


def test_load_secret_vars_reads_both_files_relative_to_workdir(write: Write, minimal: dict[str, Any]) -> None:
    build = write("job/secrets/build.env", "PIP_TOKEN=abc\n")
    write("job/runtime.env", "export DB_PASSWORD='s3cr3t'\nAPI_KEY=k\n")
    manifest = parse_manifest(
        {**minimal, "secret_build_env_file": "secrets/build.env", "secret_runtime_env_file": "runtime.env"}
    )
    assert load_secret_vars(manifest, build.parent.parent) == {
        "build_env": {"PIP_TOKEN": "abc"},
        "runtime_env": {"DB_PASSWORD": "s3cr3t", "API_KEY": "k"},
    }


def test_no_secret_files_gives_empty_envs(tmp_path: Path, minimal: dict[str, Any]) -> None:
    assert load_secret_vars(parse_manifest(minimal), tmp_path) == {"build_env": {}, "runtime_env": {}}


def test_missing_secret_file_is_named(tmp_path: Path, minimal: dict[str, Any]) -> None:
    manifest = parse_manifest({**minimal, "secret_runtime_env_file": "missing.env"})
    with pytest.raises(InvalidInput, match=r"secret_runtime_env_file.*'missing\.env' not found"):
        load_secret_vars(manifest, tmp_path)
