"""YAML from users: alias bombs, huge or deeply nested documents are refused fast, on every path."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from trackside.config import load_settings
from trackside.errors import InvalidInput
from trackside.manifest.load import manifest_from_yaml
from trackside.plugins.manifest import load_plugin_manifest
from trackside.safe_yaml import MAX_ALIASES, MAX_EXPANDED_SIZE, load_yaml


def alias_bomb(levels: int = 9, width: int = 9, indent: str = "") -> str:
    """Nine levels of nine aliases: about 400 bytes that expand to 9**9 strings."""
    lines = [f"{indent}l0: &l0 [{','.join(['lol'] * width)}]"]
    for level in range(1, levels):
        lines.append(f"{indent}l{level}: &l{level} [{','.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


MANIFEST_BOMB = (
    "name: bomb\nowner_email: a@example.com\njobtype: python3:latest\n"
    "jobtype_extra:\n  entrypoint_path: job.py\nlabels:\n" + alias_bomb(indent="  ")
)


def test_the_nested_alias_bomb_is_refused_fast_naming_the_limit() -> None:
    assert len(MANIFEST_BOMB.encode()) < 600
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match=rf"^manifest_yaml: YAML expands beyond the limit of {MAX_EXPANDED_SIZE} "):
        manifest_from_yaml(MANIFEST_BOMB, source="manifest_yaml")
    assert time.perf_counter() - started < 1


def test_a_merge_key_bomb_is_refused_too() -> None:
    lines = ["a0: &a0 {x: 1, y: 2}"] + [f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], k{i}: {i}}}" for i in range(1, 40)]
    with pytest.raises(InvalidInput, match="expands beyond the limit"):
        load_yaml("\n".join(lines), "doc")


def test_more_aliases_than_the_limit_are_refused() -> None:
    text = "base: &b 1\nitems: [" + ", ".join(["*b"] * (MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(InvalidInput, match=rf"^doc: YAML uses more than the limit of {MAX_ALIASES} aliases$"):
        load_yaml(text, "doc")


def test_a_few_aliases_for_shared_defaults_are_fine() -> None:
    text = "defaults: &d {cpu: 1, memory: 2}\nsmall: {<<: *d, cpu: 2}\nlarge: *d\n"
    assert load_yaml(text, "doc") == {
        "defaults": {"cpu": 1, "memory": 2},
        "small": {"cpu": 2, "memory": 2},
        "large": {"cpu": 1, "memory": 2},
    }


def test_recursive_aliases_oversized_and_deeply_nested_documents_are_refused() -> None:
    with pytest.raises(InvalidInput, match="an alias refers to a node that contains it"):
        load_yaml("a: &a [1, *a]\n", "doc")
    with pytest.raises(InvalidInput, match=r"^doc: YAML document is 2000001 bytes, more than the limit of 2000000"):
        load_yaml("x" * 2_000_001, "doc", max_bytes=2_000_000)
    started = time.perf_counter()
    for deep in ("[" * 500_000, "{a: " * 200_000, "".join(f"{' ' * i}k:\n" for i in range(300))):
        with pytest.raises(InvalidInput, match=r"^doc: YAML is nested deeper than the limit of 200 levels"):
            load_yaml(deep, "doc")
    assert time.perf_counter() - started < 1


def test_duplicate_keys_are_refused_with_the_line() -> None:
    with pytest.raises(InvalidInput, match=r"^doc: invalid YAML at line 2, column 1: found duplicate key 'a'"):
        load_yaml("a: 1\na: 2\n", "doc")


def test_a_non_printable_character_is_invalid_input_naming_the_source() -> None:
    with pytest.raises(InvalidInput, match=r"^manifest_yaml: invalid YAML: unacceptable character #x0083"):
        manifest_from_yaml("name: \x83\n", source="manifest_yaml")


def test_every_user_yaml_path_refuses_the_bomb(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(alias_bomb())
    with pytest.raises(InvalidInput, match=r"config file .*: YAML expands beyond the limit"):
        load_settings(config)
    with pytest.raises(InvalidInput, match=r"plugin-manifest.yaml: YAML expands beyond the limit"):
        load_plugin_manifest("name: demo\nversion: 1.0.0\n" + alias_bomb())
    job = tmp_path / "job.yaml"
    job.write_text(MANIFEST_BOMB)
    from trackside.manifest.load import load_manifest

    with pytest.raises(InvalidInput, match=r"job.yaml: YAML expands beyond the limit"):
        load_manifest(job)
