"""The python3 job type's local build: shared uv virtualenvs, bytecode, the runtime command.

Most tests use a job without requirements (an empty venv, no network); the two that install from
PyPI are marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from tests.support.ports import free_port

from trackside.build.artifacts import LocalArtifact
from trackside.build.builder import PHASE_BUILD, PHASE_FETCH, PHASE_PREPARE, build_job
from trackside.build.jobtype import BuildRequest, JobType
from trackside.build.jobtypes.python3 import Plugin
from trackside.build.jobtypes.python3.venvs import MARKER, requirements_fingerprint
from trackside.build.spec import BuildSpec
from trackside.errors import BuildFailed

ADDER = "class Adder:\n    def perform(self, a: int, b: int) -> int:\n        return a + b\n"


@pytest.fixture
def python3() -> JobType:
    return Plugin().job_types()["python3:1.0.0"]


class Builds:
    """Builds jobs from uploaded contexts into fresh workspaces sharing one cache dir."""

    def __init__(self, root: Path, job_type: JobType, make_manifest: Any, targz_b64: Any) -> None:
        self.root = root
        self.cache_dir = root / "cache"
        self.job_type = job_type
        self.make_manifest = make_manifest
        self.targz_b64 = targz_b64
        self.count = 0
        self.lock = threading.Lock()

    def build(
        self, files: dict[str, str], log: Any, extra: dict[str, Any] | None = None, **kwargs: Any
    ) -> LocalArtifact:
        with self.lock:
            self.count += 1
            workspace_root = self.root / f"build{self.count}"
        manifest_fields = kwargs.pop("manifest", {})
        manifest = self.make_manifest(jobtype_extra={"entrypoint_path": "adder.py", **(extra or {})}, **manifest_fields)
        spec = BuildSpec(
            manifest, self.job_type, workspace_root, self.cache_dir, log, build_context=self.targz_b64(files), **kwargs
        )
        return build_job(spec)


@pytest.fixture
def builds(tmp_path: Path, python3: JobType, make_manifest: Any, targz_b64: Any) -> Builds:
    return Builds(tmp_path, python3, make_manifest, targz_b64)


def venv_of(artifact: LocalArtifact) -> Path:
    return Path(artifact.command[0]).parent.parent


def test_plugin_offers_python3_with_a_local_builder(python3: JobType) -> None:
    assert Plugin.plugin_manifest == {"name": "python3-job-type", "version": "1.0.0", "category": "job-type"}
    assert (python3.name, python3.version) == ("python3", "1.0.0")
    assert [(image.source, image.template.name if image.template else None) for image in python3.images] == [
        ("jobtype", "Dockerfile.j2")  # the container image (tests/build/test_images.py)
    ]
    assert python3.local_builder is not None


def test_build_without_requirements_produces_a_runnable_command(builds: Builds, log: Any) -> None:
    phases: list[str] = []
    artifact = builds.build(
        {"adder.py": ADDER},
        log,
        extra={"max_concurrency": 4, "max_concurrency_queue": 2, "home_page": "/docs"},
        on_phase=phases.append,
    )
    workspace = builds.root / "build1" / "src"
    venv = venv_of(artifact)
    assert phases == [PHASE_FETCH, PHASE_PREPARE, PHASE_BUILD]
    assert venv.parent == builds.cache_dir / "venvs" and (venv / MARKER).is_file()
    assert artifact.command == [
        str(venv / "bin" / "python"),
        "-m",
        "trackside_runtime",
        "--entrypoint-path",
        "adder.py",
    ]
    assert Path(artifact.cwd) == workspace.resolve()
    assert artifact.job_type_version == "1.0.0"
    runtime = builds.root / "build1" / "runtime"
    assert artifact.env == {
        "PYTHONPATH": str(runtime),
        "PYTHONUNBUFFERED": "1",
        "JOB_TYPE_VERSION": "python3:1.0.0",
        "JOB_MAX_CONCURRENCY": "4",
        "JOB_MAX_CONCURRENCY_QUEUE": "2",
        "JOB_HOME_PAGE": "/docs",
        "GIT_VERSION": "tar",
    }
    # Bytecode is written at build time for the job and the runtime copy (PYTHONDONTWRITEBYTECODE is set).
    assert list((workspace / "__pycache__").glob("adder.cpython-*.pyc"))
    assert (runtime / "trackside_runtime" / "__main__.py").is_file()
    assert list((runtime / "trackside_runtime" / "__pycache__").glob("__main__.cpython-*.pyc"))
    assert "no requirements to install" in log


def test_built_command_serves_the_job_without_trackside_installed(builds: Builds, log: Any) -> None:
    artifact = builds.build({"adder.py": ADDER}, log)
    isolated = subprocess.run([artifact.command[0], "-c", "import trackside"], capture_output=True)
    assert isolated.returncode != 0, "the job's venv must not see the server's packages"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(artifact.env, PORT=str(port), JOB_HOST="127.0.0.1", JOB_NAME="adder", JOB_VERSION="0.0.1")
    proc = subprocess.Popen(
        artifact.command, cwd=artifact.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        result = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/perform",
                    data=json.dumps({"a": 40, "b": 2}).encode(),
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=2) as response:
                    result = json.loads(response.read())
                    break
            except OSError:
                time.sleep(0.1)
        output = b"" if proc.poll() is None else (proc.stdout.read() if proc.stdout else b"")
        assert result == 42, f"job did not answer; output: {output.decode(errors='replace')}"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_second_build_with_the_same_requirements_reuses_the_virtualenv(builds: Builds) -> None:
    first_log: list[str] = []
    second_log: list[str] = []
    first = builds.build({"adder.py": ADDER, "requirements.txt": "# nothing\n"}, first_log.append)
    started = time.monotonic()
    second = builds.build(
        {"adder.py": ADDER + "\n# version 2\n", "requirements.txt": "\n# nothing, reworded\n"}, second_log.append
    )
    assert venv_of(first) == venv_of(second)
    assert any(line.startswith("creating virtualenv") for line in first_log)
    assert any(line.startswith("reusing virtualenv") for line in second_log)
    assert not any(line.startswith("creating virtualenv") for line in second_log)
    assert time.monotonic() - started < 10  # generous: a cached build only copies and compiles


def test_no_cache_builds_a_new_generation_and_later_builds_use_it(builds: Builds) -> None:
    first = builds.build({"adder.py": ADDER}, lambda line: None)
    logs: list[str] = []
    fresh = builds.build({"adder.py": ADDER}, logs.append, no_cache=True)
    later = builds.build({"adder.py": ADDER}, lambda line: None)
    assert venv_of(fresh) != venv_of(first)
    assert (venv_of(first) / MARKER).is_file(), "a venv running jobs may use is never rebuilt in place"
    assert venv_of(later) == venv_of(fresh)
    assert any("(--no-cache)" in line for line in logs)


def test_an_incomplete_virtualenv_is_removed_and_rebuilt(builds: Builds) -> None:
    venv = venv_of(builds.build({"adder.py": ADDER}, lambda line: None))
    (venv / MARKER).unlink()  # as if a build had crashed half-way
    (venv / "leftover").write_text("junk")
    logs: list[str] = []
    again = venv_of(builds.build({"adder.py": ADDER}, logs.append))
    assert again == venv and (venv / MARKER).is_file()
    assert not (venv / "leftover").exists()
    assert any(line.startswith("creating virtualenv") for line in logs)


def test_concurrent_builds_with_the_same_requirements_share_one_virtualenv(builds: Builds) -> None:
    barrier = threading.Barrier(2)
    logs: list[list[str]] = [[], []]
    results: list[LocalArtifact | BaseException] = [RuntimeError("not run"), RuntimeError("not run")]

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = builds.build({"adder.py": ADDER, "requirements.txt": ""}, logs[i].append)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    artifacts = [r for r in results if isinstance(r, LocalArtifact)]
    assert len(artifacts) == 2, results
    assert venv_of(artifacts[0]) == venv_of(artifacts[1])
    all_lines = logs[0] + logs[1]
    assert sum(line.startswith("creating virtualenv") for line in all_lines) == 1
    assert sum(line.startswith("reusing virtualenv") for line in all_lines) == 1


def test_system_dependencies_are_a_warning_for_the_local_target(builds: Builds, log: Any) -> None:
    builds.build({"adder.py": ADDER}, log, manifest={"system_dependencies": ["libpq-dev"]})
    assert any(line.startswith("warning: system_dependencies") and "libpq-dev" in line for line in log)


def test_a_named_requirements_file_must_exist(builds: Builds) -> None:
    with pytest.raises(BuildFailed, match=r"requirements file 'deps/req.txt' not found in the job's source"):
        builds.build({"adder.py": ADDER}, lambda line: None, extra={"requirements_path": "deps/req.txt"})


def test_a_missing_entrypoint_fails_the_build_before_any_virtualenv(builds: Builds) -> None:
    with pytest.raises(BuildFailed, match=r"entrypoint file 'adder.py' not found"):
        builds.build({"other.py": ADDER}, lambda line: None)
    assert not (builds.cache_dir / "venvs").exists()


def test_requirements_key_ignores_comments_and_whitespace_but_follows_included_files(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("six==1.17.0\n-r base.txt\n")
    (tmp_path / "b.txt").write_text("# pinned\n  six==1.17.0   # why\n\n-r   base.txt\n")
    (tmp_path / "base.txt").write_text("idna\n")
    first = requirements_fingerprint(tmp_path / "a.txt", tmp_path)
    assert first == requirements_fingerprint(tmp_path / "b.txt", tmp_path)
    (tmp_path / "base.txt").write_text("idna==3.10\n")
    assert requirements_fingerprint(tmp_path / "a.txt", tmp_path) != first


def test_local_path_requirements_tie_the_key_to_the_source_tree(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("-e .\n")
    (tmp_path / "setup.py").write_text("v1")
    first = requirements_fingerprint(tmp_path / "requirements.txt", tmp_path)
    (tmp_path / "setup.py").write_text("v2")
    assert requirements_fingerprint(tmp_path / "requirements.txt", tmp_path) != first


@pytest.mark.slow
def test_requirements_from_pypi_are_installed_with_bytecode(builds: Builds, log: Any) -> None:
    artifact = builds.build({"adder.py": ADDER, "requirements.txt": "six==1.17.0\n"}, log)
    python = artifact.command[0]
    check = subprocess.run([python, "-c", "import six; print(six.__version__)"], capture_output=True, text=True)
    assert check.stdout.strip() == "1.17.0"
    site = next(venv_of(artifact).glob("lib/python*/site-packages"))
    assert list((site / "__pycache__").glob("six.cpython-*.pyc"))
    assert any("six==1.17.0" in line for line in log), "uv's output is streamed into the build log"


@pytest.mark.slow
def test_requirements_that_cannot_install_fail_the_build_with_uvs_error(builds: Builds, log: Any) -> None:
    with pytest.raises(BuildFailed, match=r"^requirements failed to install: ") as caught:
        builds.build({"adder.py": ADDER, "requirements.txt": "this-package-does-not-exist-trackside==1.0\n"}, log)
    assert "this-package-does-not-exist-trackside" in caught.value.message
    # uv wraps its message to the terminal width, so look at the log as one text.
    text = " ".join(" ".join(log).split())
    assert "this-package-does-not-exist-trackside was not found" in text, text
    venvs = builds.cache_dir / "venvs"
    assert not [p for p in venvs.iterdir() if p.is_dir()], "a failed venv is not left behind"


def test_build_local_can_be_called_directly_with_a_build_request(
    tmp_path: Path, python3: JobType, make_manifest: Any, log: Any
) -> None:
    workspace = tmp_path / "job"
    workspace.mkdir()
    (workspace / "adder.py").write_text(ADDER + "class Helper:\n    pass\n")
    manifest = make_manifest(jobtype_extra={"entrypoint_path": "adder.py", "entrypoint_class": "Adder"})
    request = BuildRequest(
        manifest=manifest, workspace=workspace, artifact_dir=tmp_path, cache_dir=tmp_path / "cache", log=log
    )
    artifact = python3.build_local(request)
    assert artifact.command[-2:] == ["--entrypoint-class", "Adder"]


def test_an_explicit_python_version_missing_on_the_host_is_named(builds: Builds) -> None:
    with pytest.raises(BuildFailed, match=r"python_version '3.99' \(jobtype_extra.python_version\) is not installed"):
        builds.build({"adder.py": ADDER}, lambda line: None, extra={"python_version": "3.99"})
