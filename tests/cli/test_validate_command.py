"""`trackside validate`: prints the merged manifest, or one error line and exit 1."""

from __future__ import annotations

from pathlib import Path

import yaml
from tests.cli.support import Cli

VALID = """\
name: adder
owner_email: sample@example.com
version: 0.0.1
jobtype: python3:latest
jobtype_extra:
  entrypoint_path: adder.py
"""


def write_job(directory: Path, manifest: str = VALID) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "job.yaml").write_text(manifest)
    return directory


def test_validate_prints_the_manifest_as_yaml(tmp_path: Path, cli: Cli) -> None:
    job = write_job(tmp_path / "job")

    result = cli("validate", str(job))

    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed["name"] == "adder"
    assert printed["jobtype_extra"] == {"entrypoint_path": "adder.py"}
    assert result.stderr == ""


def test_validate_defaults_to_the_current_directory(tmp_path: Path, cli: Cli, monkeypatch) -> None:
    monkeypatch.chdir(write_job(tmp_path / "job"))

    result = cli("validate")

    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout)["name"] == "adder"


def test_validate_applies_extra_var_overrides(tmp_path: Path, cli: Cli) -> None:
    job = write_job(tmp_path / "job")

    result = cli("validate", str(job), "-e", "version=1.2.3", "-e", "runtime_env.MODE=fast")

    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed["version"] == "1.2.3"
    assert printed["runtime_env"] == {"MODE": "fast"}


def test_validate_merges_extends_base(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "base.yaml").write_text(VALID + "labels:\n  team: core\n")
    job = write_job(tmp_path / "job", "extends: ../base.yaml\nversion: 2.0.0\n")

    result = cli("validate", str(job))

    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert (printed["version"], printed["labels"]) == ("2.0.0", {"team": "core"})


def test_invalid_manifest_is_one_error_line_naming_the_field(tmp_path: Path, cli: Cli) -> None:
    job = write_job(tmp_path / "job", VALID.replace("owner_email: sample@example.com\n", ""))

    result = cli("validate", str(job))

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "owner_email" in lines[0]
    assert "Traceback" not in result.output


def test_unknown_field_is_reported_by_name(tmp_path: Path, cli: Cli) -> None:
    job = write_job(tmp_path / "job", VALID + "replicaz: 2\n")

    result = cli("validate", str(job))

    assert result.exit_code == 1
    assert "replicaz" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_malformed_override_is_one_error_line(tmp_path: Path, cli: Cli) -> None:
    job = write_job(tmp_path / "job")

    result = cli("validate", str(job), "-e", "no-equals-sign")

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "no-equals-sign" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_missing_directory_is_one_error_line(tmp_path: Path, cli: Cli) -> None:
    result = cli("validate", str(tmp_path / "nowhere"))

    assert result.exit_code == 1
    assert str(tmp_path / "nowhere") in result.stderr
    assert len(result.stderr.splitlines()) == 1
