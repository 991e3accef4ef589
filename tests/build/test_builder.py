"""The build orchestration: source into `src/`, phases reported, secrets kept out of the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trackside.build.artifacts import LocalArtifact
from trackside.build.builder import PHASE_BUILD, PHASE_FETCH, PHASE_PREPARE, build_job
from trackside.build.buildlog import BuildLog
from trackside.build.jobtype import BuildRequest, JobType
from trackside.build.jobtypes.python3 import Plugin
from trackside.build.spec import BuildSpec


def test_git_build_runs_from_the_directory_and_records_the_git_version(
    tmp_path: Path, bare_repo: Path, make_manifest: Any
) -> None:
    manifest = make_manifest(git={"remote": bare_repo.as_uri(), "directory": "jobs/adder"})
    log = BuildLog(tmp_path / "build.log")
    phases: list[str] = []
    job_type = Plugin().job_types()["python3:1.0.0"]
    artifact = build_job(
        BuildSpec(manifest, job_type, tmp_path / "ws", tmp_path / "cache", log, on_phase=phases.append)
    )
    assert phases == [PHASE_FETCH, PHASE_PREPARE, PHASE_BUILD]
    assert Path(artifact.cwd) == (tmp_path / "ws" / "src" / "jobs" / "adder").resolve()
    assert artifact.env["GIT_VERSION"].startswith("v1.0.0-0-g")
    assert f"--- {PHASE_FETCH}" in log.lines
    assert (tmp_path / "build.log").read_text() == log.text()


def test_a_retried_build_in_the_same_workspace_starts_from_a_clean_source(
    tmp_path: Path, make_manifest: Any, targz_b64: Any
) -> None:
    seen: list[list[str]] = []

    def builder(request: BuildRequest) -> LocalArtifact:
        seen.append(sorted(p.name for p in request.workspace.iterdir()))
        return LocalArtifact(command=["true"], cwd=str(request.workspace))

    job_type = JobType(name="probe", version="1.0.0", local_builder=builder)
    for files in ({"old.py": "x"}, {"new.py": "y"}):
        build_job(
            BuildSpec(make_manifest(), job_type, tmp_path / "ws", tmp_path / "c", print, build_context=targz_b64(files))
        )
    assert seen == [["old.py"], ["new.py"]]


def test_secret_build_env_and_git_password_are_redacted_from_the_build_log(
    tmp_path: Path, make_manifest: Any, targz_b64: Any
) -> None:
    received: list[BuildRequest] = []

    def chatty_builder(request: BuildRequest) -> LocalArtifact:
        received.append(request)
        request.log(f"installer echoed TOKEN={request.secret_build_env['TOKEN']} and pw=git-pw-123")
        return LocalArtifact(command=["true"], cwd=str(request.workspace))

    log = BuildLog(tmp_path / "build.log")
    build_job(
        BuildSpec(
            make_manifest(build_env={"MODE": "fast"}),
            JobType(name="chatty", version="1.0.0", local_builder=chatty_builder),
            tmp_path / "ws",
            tmp_path / "cache",
            log,
            build_context=targz_b64({"adder.py": "x"}),
            git_credentials={"username": "bob", "password": "git-pw-123"},
            secret_build_env={"TOKEN": "s3cret-value"},
            no_cache=True,
        )
    )
    assert "installer echoed TOKEN=*** and pw=***" in log.lines
    assert "s3cret-value" not in (tmp_path / "build.log").read_text()
    request = received[0]
    assert request.build_env == {"MODE": "fast"} and request.no_cache
    assert request.artifact_dir == tmp_path / "ws" and request.cache_dir == tmp_path / "cache"


def test_a_build_from_source_already_in_place_fetches_nothing(tmp_path: Path, make_manifest: Any) -> None:
    job_dir = tmp_path / "ws" / "src" / "jobs" / "adder"
    job_dir.mkdir(parents=True)
    (job_dir / "adder.py").write_text("class Adder:\n    def perform(self) -> int:\n        return 1\n")
    manifest = make_manifest(git={"remote": "https://example.com/unreachable.git", "directory": "jobs/adder"})
    log = BuildLog()
    artifact = build_job(
        BuildSpec(
            manifest,
            Plugin().job_types()["python3:1.0.0"],
            tmp_path / "ws",
            tmp_path / "cache",
            log,
            source_ready=True,
            git_version="v2-0-gabc",
        )
    )
    assert Path(artifact.cwd) == job_dir.resolve()
    assert artifact.env["GIT_VERSION"] == "v2-0-gabc"
    assert not any(line.startswith("cloning") for line in log.lines)
