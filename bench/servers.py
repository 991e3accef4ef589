"""Starting one job class under Trackside's runtime or under Racetrack's runner, the same way for every bench."""

from __future__ import annotations

import os
from pathlib import Path

from bench.common import PYTHON, REPO_ROOT, Server, free_port, start_server
from bench.jobs import BODY

JOB_NAME = "bench"
JOB_VERSION = "0.0.1"
PERFORM_PATH = f"/pub/job/{JOB_NAME}/{JOB_VERSION}/api/v1/perform"


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKSIDE_", "JOB_", "VIRTUAL_ENV"))}
    env.pop("PYTHONPATH", None)
    env.update(JOB_NAME=JOB_NAME, JOB_VERSION=JOB_VERSION)
    return env


def start_trackside_job(job_file: Path, log_dir: Path, *, name: str = "trackside", core: int | None = 1) -> Server:
    """`python -m trackside.runtime` with its defaults (request logging on, to the log file)."""
    port = free_port()
    env = _base_env()
    env.update(PORT=str(port), JOB_HOST="127.0.0.1", PYTHONPATH=str(REPO_ROOT / "src"))
    command = [PYTHON, "-m", "trackside.runtime", "--entrypoint-path", job_file.name]
    return start_server(
        name,
        command,
        port,
        cwd=job_file.parent,
        env=env,
        ready_path=PERFORM_PATH,
        ready_method="POST",
        ready_body=_body(),
        log_dir=log_dir,
        core=core,
    )


def start_racetrack_job(
    runner: Path, job_file: Path, log_dir: Path, *, name: str = "racetrack", core: int | None = 1
) -> Server:
    """`python -m racetrack_job_wrapper run FILE --port N` with its defaults (access log on, to the log file)."""
    port = free_port()
    command = [str(runner), "-m", "racetrack_job_wrapper", "run", job_file.name, "--port", str(port)]
    return start_server(
        name,
        command,
        port,
        cwd=job_file.parent,
        env=_base_env(),
        ready_path=PERFORM_PATH,
        ready_method="POST",
        ready_body=_body(),
        log_dir=log_dir,
        core=core,
        timeout=120,
    )


def _body() -> dict[str, int]:
    import json

    return dict(json.loads(BODY))
