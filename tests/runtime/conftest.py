"""Fixtures: `start_job(source, ...)` runs the job runtime as a subprocess for a job class."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.runtime.harness import ADDER, SRC, RunningJob, StartJob, write_job
from tests.support.ports import free_port


@pytest.fixture
def start_job(tmp_path: Path) -> Iterator[StartJob]:
    """`start_job(source, env=..., entrypoint_class=..., wait=True, python=..., pythonpath=..., module=...)`."""
    yield from _starter(tmp_path)


@pytest.fixture(scope="module")
def adder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningJob]:
    """One adder job shared by a test module (starting a process per test would dominate the run)."""
    for start in _starter(tmp_path_factory.mktemp("adder")):
        yield start(ADDER)


def _starter(tmp_path: Path) -> Iterator[StartJob]:
    started: list[RunningJob] = []

    def start(
        source: str,
        *,
        env: dict[str, str] | None = None,
        entrypoint_class: str | None = None,
        entrypoint_path: str = "job.py",
        files: dict[str, str] | None = None,
        wait: bool = True,
        python: str = sys.executable,
        pythonpath: str = str(SRC),
        module: str = "trackside.runtime",
    ) -> RunningJob:
        job_dir = tmp_path / f"job{len(started)}"
        write_job(job_dir, source, entrypoint_path)
        for name, content in (files or {}).items():
            path = job_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(content))
        port = free_port()
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": pythonpath,
            "PORT": str(port),
            "JOB_HOST": "127.0.0.1",
            "JOB_NAME": "adder",
            "JOB_VERSION": "1.2.3",
            "JOB_DEPLOYMENT_TIMESTAMP": "1700000000",
            "PYTHONUNBUFFERED": "1",
            "GIT_VERSION": "abc123",
            "DEPLOYED_BY_RACETRACK_VERSION": "2.0.0",
            "JOB_TYPE_VERSION": "3.11-1.0",
        }
        full_env.update(env or {})
        cmd = [python, "-m", module, "--entrypoint-path", entrypoint_path]
        if entrypoint_class:
            cmd += ["--entrypoint-class", entrypoint_class]
        out = tmp_path / f"job{len(started)}.stdout"
        err = tmp_path / f"job{len(started)}.stderr"
        with out.open("wb") as fo, err.open("wb") as fe:
            proc = subprocess.Popen(cmd, cwd=job_dir, env=full_env, stdout=fo, stderr=fe)
        job = RunningJob(proc, port, job_dir, out, err)
        started.append(job)
        job.wait_listening()
        if wait:
            job.wait_loaded()
        return job

    yield start
    for job in started:
        job.stop(signal.SIGKILL)
