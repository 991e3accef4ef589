"""Loading job.yaml from disk: file lookup, invalid YAML, `extends`, `-e` overrides, round trips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from trackside.errors import InvalidInput
from trackside.manifest.load import (
    apply_overrides,
    deep_merge,
    load_manifest,
    load_manifest_dict,
    manifest_from_yaml,
    manifest_to_dict,
    manifest_to_yaml,
    parse_manifest,
)

Write = Callable[[str, str], Path]

JOB_YAML = """\
name: adder
owner_email: owner@example.com
jobtype: python3:latest
version: 1.0.0
jobtype_extra:
  entrypoint_path: adder.py
runtime_env:
  MODE: fast
"""


def test_directory_resolves_to_job_yaml(write: Write) -> None:
    path = write("job/job.yaml", JOB_YAML)
    manifest = load_manifest(path.parent)
    assert manifest.name == "adder" and manifest.version == "1.0.0"
    assert manifest.warnings == []


def test_legacy_fatman_yaml_is_accepted_with_warning(write: Write) -> None:
    path = write("job/fatman.yaml", JOB_YAML)
    manifest = load_manifest(path.parent)
    assert manifest.name == "adder"
    assert any("fatman.yaml" in w and "deprecated" in w for w in manifest.warnings)


def test_directory_without_manifest_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no job.yaml"):
        load_manifest(tmp_path)


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not found"):
        load_manifest(tmp_path / "nope.yaml")


def test_invalid_yaml_names_file_and_line(write: Write) -> None:
    path = write("job.yaml", "name: adder\nowner_email: a@b\njobtype_extra:\n  entrypoint_path: [a.py\n")
    with pytest.raises(InvalidInput) as info:
        load_manifest(path)
    assert str(path) in info.value.message
    assert "line 5" in info.value.message  # where the parser gave up (end of file)
    assert "started at line 4" in info.value.message  # where the unclosed sequence began


def test_yaml_syntax_error_reports_the_exact_line(write: Write) -> None:
    path = write("job.yaml", "name: adder\nowner_email: a@b\n  bad: indent\n")
    with pytest.raises(InvalidInput, match=rf"^{path}: invalid YAML at line 3, column \d+: "):
        load_manifest(path)


def test_duplicate_yaml_key_is_an_error_naming_the_line(write: Write) -> None:
    path = write("job.yaml", JOB_YAML + "name: other\n")
    with pytest.raises(InvalidInput, match=r"line 9.*duplicate key 'name'"):
        load_manifest(path)


@pytest.mark.parametrize(("text", "expected"), [("", "empty"), ("- a\n- b\n", "mapping")])
def test_non_mapping_yaml_is_an_error(write: Write, text: str, expected: str) -> None:
    path = write("job.yaml", text)
    with pytest.raises(InvalidInput, match=expected):
        load_manifest(path)


def test_validation_error_names_the_file(write: Write) -> None:
    path = write("job.yaml", JOB_YAML + "replica: 2\n")
    with pytest.raises(InvalidInput) as info:
        load_manifest(path)
    assert info.value.message == f"{path}: unknown field 'replica'"


def test_extends_deep_merges_with_overlay_winning(write: Write) -> None:
    write("base/base.yaml", JOB_YAML + "labels:\n  team: ml\n  tier: 1\nsystem_dependencies: [curl, git]\n")
    path = write(
        "prod/job.yaml",
        "extends: ../base/base.yaml\nversion: 2.0.0\nlabels:\n  tier: 3\nsystem_dependencies: [git]\n"
        "runtime_env:\n  EXTRA: 'yes'\n",
    )
    data = load_manifest_dict(path)
    assert "extends" not in data
    assert data["name"] == "adder" and data["version"] == "2.0.0"
    assert data["labels"] == {"team": "ml", "tier": 3}
    assert data["system_dependencies"] == ["git"]  # lists are replaced, not concatenated
    assert data["runtime_env"] == {"MODE": "fast", "EXTRA": "yes"}
    manifest = load_manifest(path)
    assert manifest.extends is None and manifest.version == "2.0.0"


def test_extends_may_point_at_a_directory(write: Write) -> None:
    write("base/job.yaml", JOB_YAML)
    path = write("prod/job.yaml", "extends: ../base\nreplicas: 2\n")
    assert load_manifest(path).replicas == 2


def test_extends_missing_base_names_it(write: Write) -> None:
    path = write("job.yaml", "extends: base.yaml\nname: adder\n")
    with pytest.raises(InvalidInput, match=r"field 'extends': base manifest 'base.yaml' not found"):
        load_manifest_dict(path)


def test_extends_is_one_level_only(write: Write) -> None:
    write("root.yaml", JOB_YAML)
    write("base.yaml", "extends: root.yaml\nversion: 1.1.0\n")
    path = write("job.yaml", "extends: base.yaml\n")
    with pytest.raises(InvalidInput, match="only one level of 'extends'"):
        load_manifest_dict(path)


def test_invalid_yaml_in_base_names_the_base_file(write: Write) -> None:
    base = write("base.yaml", "name: [oops\n")
    path = write("job.yaml", "extends: base.yaml\n")
    with pytest.raises(InvalidInput, match=rf"^{base}: invalid YAML"):
        load_manifest_dict(path)


def test_overrides_apply_after_extends(write: Write) -> None:
    write("base.yaml", JOB_YAML)
    path = write("job.yaml", "extends: base.yaml\nversion: 2.0.0\n")
    manifest = load_manifest(path, ["version=3.0.0", "runtime_env.MODE=slow", "jobtype_extra.max_concurrency=2"])
    assert manifest.version == "3.0.0"
    assert manifest.runtime_env == {"MODE": "slow"}
    assert manifest.python_extra.max_concurrency == 2


def test_override_values_are_parsed_as_yaml() -> None:
    data = apply_overrides(
        {"a": 1},
        ["n=3", "flag=true", "items=[x, y]", "obj={k: v}", "text=hello world", "quoted='007'", "none="],
    )
    assert data == {
        "a": 1,
        "n": 3,
        "flag": True,
        "items": ["x", "y"],
        "obj": {"k": "v"},
        "text": "hello world",
        "quoted": "007",
        "none": None,
    }


def test_dotted_override_creates_nested_mappings_without_touching_input() -> None:
    original: dict[str, Any] = {"git": {"remote": "https://h/r"}}
    data = apply_overrides(original, ["git.branch=dev", "resources.memory_max=1Gi", "a.b.c.d=1"])
    assert data["git"] == {"remote": "https://h/r", "branch": "dev"}
    assert data["resources"] == {"memory_max": "1Gi"}
    assert data["a"] == {"b": {"c": {"d": 1}}}
    assert original == {"git": {"remote": "https://h/r"}}


def test_value_may_contain_equals_sign() -> None:
    assert apply_overrides({}, ["runtime_env.Q=a=b"]) == {"runtime_env": {"Q": "a=b"}}


@pytest.mark.parametrize("override", ["novalue", "=3", "a..b=1", ".a=1", "a b=1"])
def test_invalid_override_syntax_is_an_error(override: str) -> None:
    with pytest.raises(InvalidInput, match=rf"override '{override}': expected KEY=VALUE"):
        apply_overrides({}, [override])


def test_override_through_a_scalar_is_an_error() -> None:
    with pytest.raises(InvalidInput, match="'version' is a str, not a mapping"):
        apply_overrides({"version": "1.0.0"}, ["version.major=2"])


def test_override_with_invalid_yaml_value_is_an_error() -> None:
    with pytest.raises(InvalidInput, match=r"override 'x=\[1, 2': invalid YAML"):
        apply_overrides({}, ["x=[1, 2"])


def test_deep_merge_does_not_mutate_inputs() -> None:
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    overlay = {"a": {"c": [2], "e": {"f": 1}}}
    merged = deep_merge(base, overlay)
    assert merged == {"a": {"b": 1, "c": [2], "e": {"f": 1}}, "d": 1}
    merged["a"]["e"]["f"] = 9
    assert base == {"a": {"b": 1, "c": [1]}, "d": 1} and overlay == {"a": {"c": [2], "e": {"f": 1}}}


def test_manifest_round_trips_through_dict_and_yaml(write: Write) -> None:
    manifest = load_manifest(write("job.yaml", JOB_YAML))
    as_dict = manifest_to_dict(manifest)
    assert as_dict == yaml.safe_load(JOB_YAML)
    assert parse_manifest(as_dict).model_dump() == manifest.model_dump()
    text = manifest_to_yaml(manifest)
    assert text.startswith("name: adder\n")
    assert manifest_from_yaml(text).model_dump() == manifest.model_dump()


def test_to_dict_leaves_out_unset_defaults() -> None:
    manifest = parse_manifest(
        {"name": "a", "owner_email": "a@b", "jobtype": "dockerfile:1.0.0", "git": {"remote": "https://h/r"}}
    )
    assert manifest_to_dict(manifest) == {
        "name": "a",
        "owner_email": "a@b",
        "jobtype": "dockerfile:1.0.0",
        "git": {"remote": "https://h/r"},
    }
