"""Moving a job between the local and docker targets of a real `trackside up`, with no gap in service."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from tests.infra.docker.support import CallLoop, require_engine
from tests.infra.docker.support import platform_with_docker as docker_platform
from tests.support.platform import RunningPlatform, deploy_and_wait, deploy_directory, wait_for_deployment, write_job

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ADDER = "class Job:\n    def perform(self, a=0, b=0):\n        return a + b\n"


@pytest.fixture
def platform_with_docker(tmp_path: Path, database_url: str) -> Iterator[RunningPlatform]:
    with docker_platform(tmp_path, database_url) as running:
        yield running


def test_move_local_to_docker_and_back_without_a_failed_call(
    platform_with_docker: RunningPlatform, tmp_path: Path
) -> None:
    platform = platform_with_docker
    job_dir = write_job(tmp_path / "job", "mover", ADDER, extra="infrastructure_target: local\n")
    assert deploy_and_wait(platform, job_dir)["status"] == "done"
    api = platform.http

    with CallLoop(platform, "mover") as loop:
        moved = api.post(f"{platform.api}/job/mover/0.0.1/move", json={"infrastructure_target": "docker"}, timeout=600)
        assert moved.status_code == 200, moved.text
        assert moved.json()["infrastructure_target"] == "docker"
        during_first = loop.ok

        # And back, with the CLI.
        env = {**os.environ, "TRACKSIDE_CLIENT_CONFIG": str(tmp_path / "client")}
        env.pop("TRACKSIDE_REMOTE", None)
        cli = [sys.executable, "-m", "trackside.cli.main"]
        login = subprocess.run(
            [*cli, "login", platform.admin_token, "--remote", platform.url],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert login.returncode == 0, login.stderr
        back = subprocess.run(
            [*cli, "move", "mover", "--version", "0.0.1", "--infrastructure", "local", "--remote", platform.url],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert back.returncode == 0, back.stderr
        assert "moved mover 0.0.1 to local" in back.stderr
    assert loop.failures == []
    assert during_first > 0 and loop.ok > during_first

    job = api.get(f"{platform.api}/job/mover/0.0.1").json()
    assert job["infrastructure_target"] == "local" and job["status"] == "running"
    engine = require_engine()
    leftover = engine.run(["ps", "-aq", "--filter", "label=trackside.job-name=mover"]).stdout.split()
    assert leftover == []  # the docker replicas went once the job served from local again
    build_logs = api.get(f"{platform.api}/job/mover/0.0.1/build-logs").json()["logs"]
    assert "moving job mover 0.0.1 from docker to local" in build_logs


def test_move_refuses_unknown_targets_and_the_current_one(
    platform_with_docker: RunningPlatform, tmp_path: Path
) -> None:
    platform = platform_with_docker
    # Not "mover": parallel tests share the docker engine, and this platform's clean-up removes
    # every container of the jobs it deployed, by name.
    job_dir = write_job(tmp_path / "job", "stayer", ADDER, extra="infrastructure_target: local\n")
    assert deploy_and_wait(platform, job_dir)["status"] == "done"
    api = platform.http
    unknown = api.post(f"{platform.api}/job/stayer/0.0.1/move", json={"infrastructure_target": "mars"})
    assert unknown.status_code == 400 and "'mars' is not available" in unknown.json()["error"]
    same = api.post(f"{platform.api}/job/stayer/0.0.1/move", json={"infrastructure_target": "local"})
    assert same.status_code == 400 and "already runs on" in same.json()["error"]
    missing = api.post(f"{platform.api}/job/stayer/0.0.1/move", json={})
    assert missing.status_code == 400 and "infrastructure_target" in missing.json()["error"]


def test_a_move_and_a_forced_deploy_of_one_version_never_run_at_once(
    platform_with_docker: RunningPlatform, tmp_path: Path
) -> None:
    platform = platform_with_docker
    api = platform.http
    # Not "mover" nor "stayer": parallel tests share the docker engine (see above).
    job_dir = write_job(tmp_path / "job", "exclusive", ADDER, extra="infrastructure_target: local\n")
    assert deploy_and_wait(platform, job_dir)["status"] == "done"

    # A forced deploy in progress (its replicas take 4 s to get ready): a move of the version is refused.
    (job_dir / "job.py").write_text("import time\ntime.sleep(4)\n" + ADDER)
    forced = deploy_directory(platform, job_dir, force=True)
    assert forced.status_code in (200, 201), forced.text
    move = api.post(f"{platform.api}/job/exclusive/0.0.1/move", json={"infrastructure_target": "docker"})
    assert move.status_code == 409, move.text
    assert "already in progress" in move.json()["error"]
    assert wait_for_deployment(platform.api, forced.json()["id"])["status"] == "done"

    # A move in progress: a forced deploy of the version is refused.
    with ThreadPoolExecutor(1) as pool:
        moving = pool.submit(
            api.post, f"{platform.api}/job/exclusive/0.0.1/move", json={"infrastructure_target": "docker"}, timeout=600
        )
        deadline = time.monotonic() + 120
        while not any(
            d["job_name"] == "exclusive" and d["status"] == "in_progress"
            for d in api.get(f"{platform.api}/deploy").json()
        ):
            assert time.monotonic() < deadline and not moving.done(), "the move never showed as in progress"
            time.sleep(0.05)
        refused = deploy_directory(platform, job_dir, force=True)
        assert refused.status_code == 409, refused.text
        moved = moving.result(timeout=600)
    assert moved.status_code == 200, moved.text
    assert moved.json()["infrastructure_target"] == "docker"
