"""`trackside deploy` against the API's documented shapes: the request body, polling, and outcomes."""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
from pathlib import Path

import pytest
from tests.cli.support import Cli, ScriptedApi

DEPLOY = "/lifecycle/api/v1/deploy"
MANIFEST = """\
name: adder
owner_email: sample@example.com
version: 0.0.1
jobtype: python3:latest
jobtype_extra:
  entrypoint_path: adder.py
secret_runtime_env_file: .env.secret
"""


@pytest.fixture
def job_dir(tmp_path: Path) -> Path:
    job = tmp_path / "adder"
    job.mkdir()
    (job / "job.yaml").write_text(MANIFEST)
    (job / "adder.py").write_text("class Adder:\n    def perform(self, a, b):\n        return a + b\n")
    (job / ".env.secret").write_text("API_KEY=s3cret\n")
    (job / ".gitignore").write_text(".env.secret\n")
    return job


def script_deployment(api: ScriptedApi, *, final: dict[str, object]) -> None:
    api.answer("POST", DEPLOY, {"id": "dep-1"})
    for phase in ("building image", "building image", "starting Job server"):
        api.answer("GET", f"{DEPLOY}/dep-1", {"id": "dep-1", "status": "in_progress", "phase": phase})
    api.answer("GET", f"{DEPLOY}/dep-1", final)


def test_deploy_posts_manifest_secrets_and_context_and_prints_the_url(
    cli: Cli, scripted_api: ScriptedApi, job_dir: Path
) -> None:
    url = f"{scripted_api.url}/pub/job/adder/0.0.1"
    script_deployment(
        scripted_api,
        final={"id": "dep-1", "status": "done", "phase": "done", "job": {"name": "adder", "pub_url": url}},
    )

    result = cli("deploy", str(job_dir), "--remote", scripted_api.url, "-e", "labels.team=core", "--no-cache")

    assert result.exit_code == 0, result.output
    assert result.stdout == f"{url}\n"
    (posted,) = scripted_api.received("POST", DEPLOY)
    body = posted.json()
    assert body["manifest"]["name"] == "adder"
    assert body["manifest"]["labels"] == {"team": "core"}
    assert body["secret_vars"] == {"build_env": {}, "runtime_env": {"API_KEY": "s3cret"}}
    assert body["force"] is False
    assert body["build_flags"] == ["--no-cache"]
    assert body["git_credentials"] is None
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(body["build_context"])), mode="r:gz") as tar:
        assert set(tar.getnames()) == {".gitignore", "job.yaml", "adder.py"}


def test_deploy_prints_each_phase_once_when_not_a_tty(cli: Cli, scripted_api: ScriptedApi, job_dir: Path) -> None:
    script_deployment(scripted_api, final={"id": "dep-1", "status": "done", "job": {"pub_url": "http://x"}})

    result = cli("deploy", str(job_dir), "--remote", scripted_api.url)

    phases = [line.split("] ", 1)[1] for line in result.stderr.splitlines() if line.startswith("[")]
    assert phases == ["building image", "starting Job server", "done"]
    assert len(scripted_api.received("GET", f"{DEPLOY}/dep-1")) == 4


def test_deploy_prints_server_warnings_once(cli: Cli, scripted_api: ScriptedApi, job_dir: Path) -> None:
    scripted_api.answer("POST", DEPLOY, {"id": "dep-1"})
    in_progress = {"id": "dep-1", "status": "in_progress", "phase": "building image", "warnings": "slow mirror"}
    scripted_api.answer("GET", f"{DEPLOY}/dep-1", in_progress)
    scripted_api.answer("GET", f"{DEPLOY}/dep-1", in_progress)
    scripted_api.answer(
        "GET", f"{DEPLOY}/dep-1", {"id": "dep-1", "status": "done", "warnings": "slow mirror", "job": {"pub_url": "u"}}
    )

    result = cli("deploy", str(job_dir), "--remote", scripted_api.url)

    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning: slow mirror") == 1


def test_force_flag_is_sent(cli: Cli, scripted_api: ScriptedApi, job_dir: Path) -> None:
    script_deployment(scripted_api, final={"id": "dep-1", "status": "done", "job": {"pub_url": "u"}})

    cli("deploy", str(job_dir), "--force", "--remote", scripted_api.url)

    assert scripted_api.received("POST", DEPLOY)[0].json()["force"] is True


def test_failed_deploy_prints_the_whole_error_and_exits_1(cli: Cli, scripted_api: ScriptedApi, job_dir: Path) -> None:
    error = "job did not start: ModuleNotFoundError: No module named 'adder'\nlogs:\nTraceback (job's own)"
    script_deployment(scripted_api, final={"id": "dep-1", "status": "failed", "error": error})

    result = cli("deploy", str(job_dir), "--remote", scripted_api.url)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"error: deploy failed: {error}\n" in result.stderr


def test_git_build_context_sends_no_tarball(cli: Cli, scripted_api: ScriptedApi, job_dir: Path) -> None:
    script_deployment(scripted_api, final={"id": "dep-1", "status": "done", "job": {"pub_url": "u"}})

    result = cli(
        "deploy",
        str(job_dir),
        "--build-context",
        "git",
        "-e",
        "git.remote=https://github.com/example/adder",
        "--remote",
        scripted_api.url,
    )

    assert result.exit_code == 0, result.output
    assert scripted_api.received("POST", DEPLOY)[0].json()["build_context"] is None


def test_git_build_context_without_git_remote_is_an_error(cli: Cli, scripted_api: ScriptedApi, job_dir: Path) -> None:
    result = cli("deploy", str(job_dir), "--build-context", "git", "--remote", scripted_api.url)

    assert result.exit_code == 1
    assert "git.remote" in result.stderr
    assert scripted_api.requests == []


def test_invalid_manifest_fails_before_any_request(cli: Cli, scripted_api: ScriptedApi, job_dir: Path) -> None:
    (job_dir / "job.yaml").write_text(MANIFEST.replace("version: 0.0.1", "version: one"))

    result = cli("deploy", str(job_dir), "--remote", scripted_api.url)

    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert "version" in result.stderr
    assert scripted_api.requests == []


def test_missing_secret_file_is_one_error_line(cli: Cli, scripted_api: ScriptedApi, job_dir: Path) -> None:
    (job_dir / ".env.secret").unlink()

    result = cli("deploy", str(job_dir), "--remote", scripted_api.url)

    assert result.exit_code == 1
    assert ".env.secret" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_symlink_escaping_the_job_is_warned_about(
    cli: Cli, scripted_api: ScriptedApi, job_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside.txt").write_text("private")
    (job_dir / "link.txt").symlink_to(tmp_path / "outside.txt")
    script_deployment(scripted_api, final={"id": "dep-1", "status": "done", "job": {"pub_url": "u"}})

    result = cli("deploy", str(job_dir), "--remote", scripted_api.url)

    assert result.exit_code == 0, result.output
    assert "warning: build context: skipped symlink link.txt" in result.stderr


def test_deploy_never_uploads_the_secret_env_files_even_when_not_ignored(
    cli: Cli, scripted_api: ScriptedApi, job_dir: Path
) -> None:
    (job_dir / ".gitignore").unlink()  # the case: nothing keeps runtime secrets out of the context
    (job_dir / "job.yaml").write_text(MANIFEST + "secret_build_env_file: secrets/build.env\n")
    (job_dir / "secrets").mkdir()
    (job_dir / "secrets" / "build.env").write_text("PIP_TOKEN=b1ld\n")
    script_deployment(scripted_api, final={"id": "dep-1", "status": "done", "job": {"pub_url": "http://x"}})

    result = cli("deploy", str(job_dir), "--remote", scripted_api.url)

    assert result.exit_code == 0, result.output
    body = scripted_api.received("POST", DEPLOY)[0].json()
    assert body["secret_vars"] == {"build_env": {"PIP_TOKEN": "b1ld"}, "runtime_env": {"API_KEY": "s3cret"}}
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(body["build_context"])), mode="r:gz") as tar:
        assert set(tar.getnames()) == {"job.yaml", "adder.py", "secrets"}
    raw = base64.b64decode(body["build_context"])
    assert b"s3cret" not in gzip.decompress(raw) and b"b1ld" not in gzip.decompress(raw)
