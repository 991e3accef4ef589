"""The job.yaml schema: every Racetrack field, strict unknown fields, legacy spellings."""

from __future__ import annotations

from typing import Any

import pytest

from trackside.errors import InvalidInput
from trackside.manifest.load import manifest_to_dict, parse_manifest
from trackside.manifest.model import INJECTED_ENV_VARS, PythonJobExtra, parse_quantity

FULL: dict[str, Any] = {
    "name": "image-classifier-2",
    "owner_email": "ml-team@example.com",
    "git": {"remote": "https://github.com/org/jobs", "branch": "main", "directory": "classifier"},
    "version": "1.2.3-rc.1+build.5",
    "jobtype": "python3:2.*",
    "image_type": "docker",
    "system_dependencies": ["libgomp1", "curl"],
    "build_env": {"PIP_INDEX_URL": "https://pypi.example.com/simple"},
    "runtime_env": {"MODEL": "resnet", "THREADS": "4"},
    "secret_build_env_file": ".env.build",
    "secret_runtime_env_file": ".env.runtime",
    "labels": {"team": "ml", "tier": 2},
    "public_endpoints": ["/api/v1/perform", "/api/v1/webview"],
    "replicas": 3,
    "resources": {"memory_min": "256Mi", "memory_max": "1Gi", "cpu_min": "10m", "cpu_max": "1000m"},
    "jobtype_extra": {
        "entrypoint_path": "classifier/entry.py",
        "entrypoint_class": "Classifier",
        "requirements_path": "requirements.txt",
        "python_version": "3.12",
        "debian_version": "bookworm",
        "debian_backports": True,
        "check_requirements": False,
        "memray_profiler": True,
        "home_page": "/api/v1/webview",
        "max_concurrency": 4,
        "max_concurrency_queue": 10,
    },
    "infrastructure_target": "local",
}


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as info:
        parse_manifest(data, source="job.yaml")
    return info.value.message


def test_every_racetrack_field_is_accepted_and_kept() -> None:
    manifest = parse_manifest(FULL)
    assert manifest_to_dict(manifest) == FULL
    assert manifest.git is not None and manifest.git.directory == "classifier"
    assert manifest.resources is not None and manifest.resources.memory_max_bytes == 2**30
    assert manifest.warnings == []


def test_defaults_follow_racetrack(minimal: dict[str, Any]) -> None:
    manifest = parse_manifest(minimal)
    assert (manifest.version, manifest.replicas, manifest.image_type) == ("0.0.1", 1, "docker")
    extra = manifest.python_extra
    assert extra == PythonJobExtra(entrypoint_path="adder.py")
    assert (extra.python_version, extra.check_requirements, extra.max_concurrency) == ("3.11", True, None)
    assert manifest.git_directory == "."


def test_jobtype_name_and_version_are_split(minimal: dict[str, Any]) -> None:
    manifest = parse_manifest({**minimal, "jobtype": "python3:1.3.*-3.9-bullseye"})
    assert manifest.jobtype_name == "python3"
    assert manifest.jobtype_version == "1.3.*-3.9-bullseye"


@pytest.mark.parametrize("path", [("foo",), ("git", "tag"), ("resources", "gpu"), ("jobtype_extra", "entrypoint")])
def test_unknown_field_is_an_error_naming_it(minimal: dict[str, Any], path: tuple[str, ...]) -> None:
    data: dict[str, Any] = {**minimal, "git": {"remote": "https://x/y"}, "resources": {}}
    data["jobtype_extra"] = dict(minimal["jobtype_extra"])
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = 1
    assert f"job.yaml: unknown field '{'.'.join(path)}'" in _error(data)


@pytest.mark.parametrize("missing", ["name", "owner_email"])
def test_required_field_missing_is_named(minimal: dict[str, Any], missing: str) -> None:
    del minimal[missing]
    assert _error(minimal) == f"job.yaml: field '{missing}': Field required"


def test_jobtype_or_lang_is_required(minimal: dict[str, Any]) -> None:
    del minimal["jobtype"]
    assert "field 'jobtype' is required" in _error(minimal)


def test_python_entrypoint_missing_names_the_nested_field(minimal: dict[str, Any]) -> None:
    minimal["jobtype_extra"] = {"entrypoint_class": "Adder"}
    assert _error(minimal) == "job.yaml: field 'jobtype_extra.entrypoint_path': Field required"


def test_python_extra_view_rejects_bad_values(minimal: dict[str, Any]) -> None:
    manifest = parse_manifest({**minimal, "jobtype": "golang:1.0.0", "jobtype_extra": {"max_concurrency": 0}})
    with pytest.raises(InvalidInput, match=r"'jobtype_extra\.entrypoint_path'"):
        _ = manifest.python_extra
    with pytest.raises(InvalidInput, match=r"'jobtype_extra\.max_concurrency'"):
        _ = manifest.python_extra


def test_several_problems_are_reported_one_per_line() -> None:
    message = _error({"name": "bad_name", "owner_email": "nobody", "jobtype": "python3:latest", "colour": "red"})
    lines = message.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("job.yaml: ") for line in lines)
    assert "job.yaml: unknown field 'colour'" in lines


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("adder", True),
        ("a", True),
        ("job-2", True),
        ("my_job", False),
        ("Adder", False),
        ("-adder", False),
        ("adder-", False),
        ("a.b", False),
        ("", False),
        ("x" * 63, True),
        ("x" * 64, False),
    ],
)
def test_name_must_be_a_dns_label(minimal: dict[str, Any], name: str, ok: bool) -> None:
    if ok:
        assert parse_manifest({**minimal, "name": name}).name == name
    else:
        assert "field 'name'" in _error({**minimal, "name": name})


def test_underscore_in_name_gets_a_specific_hint(minimal: dict[str, Any]) -> None:
    assert "underscores" in _error({**minimal, "name": "my_job"})


@pytest.mark.parametrize(("email", "ok"), [("a@b", True), ("x.y@example.com", True), ("@b", False), ("ab", False)])
def test_owner_email_must_match_racetrack_pattern(minimal: dict[str, Any], email: str, ok: bool) -> None:
    if ok:
        parse_manifest({**minimal, "owner_email": email})
    else:
        assert "field 'owner_email'" in _error({**minimal, "owner_email": email})


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("0.0.1", True),
        ("1.0.0-alpha.1", True),
        ("2.0.0+sha.abc", True),
        ("1.0", False),
        ("v1.0.0", False),
        ("01.0.0", False),
        ("latest", False),
        (1.0, False),
    ],
)
def test_version_must_be_semver(minimal: dict[str, Any], version: Any, ok: bool) -> None:
    if ok:
        assert parse_manifest({**minimal, "version": version}).version == version
    else:
        assert "field 'version'" in _error({**minimal, "version": version})


@pytest.mark.parametrize("jobtype", ["python3", "python3:", ":1.0", "python 3:1.0"])
def test_jobtype_must_be_name_colon_version(minimal: dict[str, Any], jobtype: str) -> None:
    assert "field 'jobtype'" in _error({**minimal, "jobtype": jobtype})


def test_lang_is_normalized_to_jobtype_with_warning(minimal: dict[str, Any]) -> None:
    data = {**minimal, "lang": minimal.pop("jobtype")}
    del data["jobtype"]
    manifest = parse_manifest(data)
    assert manifest.jobtype == "python3:latest" and manifest.lang is None
    assert any("'lang' is deprecated" in w for w in manifest.warnings)
    dumped = manifest_to_dict(manifest)
    assert dumped["jobtype"] == "python3:latest" and "lang" not in dumped


def test_lang_contradicting_jobtype_is_an_error(minimal: dict[str, Any]) -> None:
    assert "disagree" in _error({**minimal, "lang": "golang:1.0.0"})


@pytest.mark.parametrize("legacy", ["python", "golang", "docker", "wrapper_properties"])
def test_legacy_extra_spellings_become_jobtype_extra(minimal: dict[str, Any], legacy: str) -> None:
    data = {**minimal, legacy: minimal.pop("jobtype_extra")}
    del data["jobtype_extra"]
    manifest = parse_manifest(data)
    assert manifest.jobtype_extra == {"entrypoint_path": "adder.py"}
    assert getattr(manifest, legacy) is None
    assert any(f"'{legacy}' is deprecated" in w for w in manifest.warnings)
    assert legacy not in manifest_to_dict(manifest)


@pytest.mark.parametrize("legacy", ["python", "wrapper_properties"])
def test_legacy_extra_and_jobtype_extra_are_mutually_exclusive(minimal: dict[str, Any], legacy: str) -> None:
    message = _error({**minimal, legacy: {"entrypoint_path": "other.py"}})
    assert "'jobtype_extra'" in message and f"'{legacy}'" in message


def test_two_legacy_extra_spellings_are_an_error(minimal: dict[str, Any]) -> None:
    del minimal["jobtype_extra"]
    message = _error({**minimal, "python": {"entrypoint_path": "a.py"}, "golang": {"x": 1}})
    assert "'python'" in message and "'golang'" in message


@pytest.mark.parametrize("field", ["runtime_env", "build_env"])
@pytest.mark.parametrize("var", sorted(INJECTED_ENV_VARS))
def test_env_colliding_with_injected_vars_is_rejected(minimal: dict[str, Any], field: str, var: str) -> None:
    message = _error({**minimal, field: {"OK": "1", var: "x"}})
    assert f"field '{field}'" in message and f"'{var}'" in message


def test_env_values_from_yaml_scalars_become_strings(minimal: dict[str, Any]) -> None:
    manifest = parse_manifest({**minimal, "runtime_env": {"N": 4, "RATIO": 0.5, "DEBUG": True}})
    assert manifest.runtime_env == {"N": "4", "RATIO": "0.5", "DEBUG": "true"}


def test_env_names_must_be_identifiers(minimal: dict[str, Any]) -> None:
    assert "not a valid environment variable name" in _error({**minimal, "build_env": {"MY-VAR": "1"}})


@pytest.mark.parametrize(("replicas", "ok"), [(1, True), (50, True), (0, False), (51, False), ("two", False)])
def test_replicas_range(minimal: dict[str, Any], replicas: Any, ok: bool) -> None:
    if ok:
        assert parse_manifest({**minimal, "replicas": replicas}).replicas == replicas
    else:
        assert "field 'replicas'" in _error({**minimal, "replicas": replicas})


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("memory_max", "512Mi", True),
        ("memory_max", "1.5Gi", True),
        ("memory_max", "2e9", True),
        ("cpu_min", "250m", True),
        ("cpu_max", 2, True),
        ("memory_max", "1GB", False),
        ("cpu_min", "-1", False),
        ("cpu_min", "fast", False),
    ],
)
def test_resources_are_k8s_quantities(minimal: dict[str, Any], field: str, value: Any, ok: bool) -> None:
    data = {**minimal, "resources": {field: value}}
    if ok:
        parse_manifest(data)
    else:
        assert f"field 'resources.{field}'" in _error(data)


def test_resources_min_above_max_is_rejected(minimal: dict[str, Any]) -> None:
    message = _error({**minimal, "resources": {"memory_min": "2Gi", "memory_max": "1Gi"}})
    assert "memory_min" in message and "greater" in message


def test_parse_quantity_units() -> None:
    assert parse_quantity("1Ki") == 1024
    assert parse_quantity("250m") == pytest.approx(0.25)
    assert parse_quantity("1k") == 1000
    assert parse_quantity("3") == 3


@pytest.mark.parametrize(
    ("remote", "ok"),
    [
        ("https://github.com/org/repo", True),
        ("http://gitea.local/org/repo.git", True),
        ("file:///srv/repo", True),
        ("/srv/repos/adder", True),
        ("./adder", True),
        ("git@github.com:org/repo.git", False),
        ("ssh://git@host/repo", False),
        ("ftp://host/repo", False),
        ("", False),
    ],
)
def test_git_remote_schemes(minimal: dict[str, Any], remote: str, ok: bool) -> None:
    data = {**minimal, "git": {"remote": remote}}
    if ok:
        parse_manifest(data)
    else:
        assert "field 'git.remote'" in _error(data)


def test_git_without_remote_is_an_error(minimal: dict[str, Any]) -> None:
    assert _error({**minimal, "git": {"branch": "main"}}) == "job.yaml: field 'git.remote': Field required"


def test_git_directory_must_stay_inside_the_repo(minimal: dict[str, Any]) -> None:
    assert "field 'git.directory'" in _error({**minimal, "git": {"remote": "https://h/r", "directory": "../x"}})


def test_image_type_other_than_docker_is_rejected(minimal: dict[str, Any]) -> None:
    assert "field 'image_type'" in _error({**minimal, "image_type": "oci"})


def test_public_endpoints_must_be_paths(minimal: dict[str, Any]) -> None:
    assert "field 'public_endpoints'" in _error({**minimal, "public_endpoints": ["api/v1/perform"]})


def test_wrong_type_names_the_list_index(minimal: dict[str, Any]) -> None:
    assert "field 'system_dependencies[1]'" in _error({**minimal, "system_dependencies": ["curl", {"x": 1}]})


def test_non_mapping_manifest_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="job.yaml: manifest must be a mapping"):
        parse_manifest(["name"], source="job.yaml")
