"""The docker executor on the real Docker engine: chainr's README pipeline golden, outputs, env, and the
air-gapped rules (images mapped by the operator, never pulled)."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from tests.pipelines.support import (
    ENV_AND_OUTPUTS_PIPELINE,
    README_GOLDEN_JOBS,
    README_PIPELINE,
    chainr_view,
    wait_for_run,
)
from tests.support.platform import RunningPlatform
from tests.support.polling import wait_until
from tests.support.services import require_docker

pytestmark = [pytest.mark.slow, pytest.mark.store, pytest.mark.docker]


@pytest.fixture(autouse=True)
def _docker() -> None:
    require_docker()


def run_on_docker(platform: RunningPlatform, body: dict[str, Any]) -> dict[str, Any]:
    response = platform.http.post(f"{platform.url}/api/runs", json={**body, "executor": "docker"})
    assert response.status_code == 202, response.text
    return wait_for_run(platform.http, platform.url, response.json()["metadata"]["uid"])


def test_the_readme_pipeline_runs_golden_on_docker(pipeline_platform: RunningPlatform) -> None:
    run = run_on_docker(pipeline_platform, README_PIPELINE)
    assert chainr_view(run)["jobs"] == README_GOLDEN_JOBS
    assert run["status"] == "SUCCESSFUL"
    assert {job["executor"] for job in run["jobs"]} == {"docker"}
    wait_until(lambda: _containers_of(run["metadata"]["uid"]) == [], what="the step containers removed")


def _containers_of(uid: str) -> list[str]:
    return subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=trackside.pipeline.run={uid}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def test_a_docker_step_gets_its_env_and_publishes_outputs_and_logs(pipeline_platform: RunningPlatform) -> None:
    body = ENV_AND_OUTPUTS_PIPELINE
    run = run_on_docker(pipeline_platform, body)
    jobs = {job["name"]: job for job in run["jobs"]}
    assert jobs["count"]["outputs"] == {"twice": "40"}
    assert jobs["fail"]["status"] == "FAILED" and jobs["fail"]["reason"] == "exited with code 7"
    assert run["status"] == "SUCCESSFUL"
    log = pipeline_platform.http.get(f"{pipeline_platform.url}/api/runs/{run['metadata']['uid']}/jobs/count/logs")
    assert "::output twice=40" in log.text and "done" in log.text


def test_an_image_the_engine_lacks_fails_the_step_without_a_pull(pipeline_platform: RunningPlatform) -> None:
    body = {"kind": "Pipeline", "jobs": {"x": {"image": "nowhere.invalid/ghost:1", "run": "true"}}}
    run = run_on_docker(pipeline_platform, body)
    reason = run["jobs"][0]["reason"]
    assert run["status"] == "FAILED"
    assert "image nowhere.invalid/ghost:1 is not on the Docker engine" in reason and "pipeline_images" in reason
    assert "pulling is off" in reason
