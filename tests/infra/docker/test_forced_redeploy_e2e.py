"""A forced redeploy on the docker target, inside a real `trackside up`, never fails a gateway call.

The new deployment's containers start beside the serving ones; traffic moves once they are ready and
the old ones are removed after; a new deployment that never gets ready is removed and the old one
keeps serving.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.infra.docker.support import CallLoop, platform_with_docker, require_engine
from tests.support.calls import Callers, generation_source, serving_generation
from tests.support.platform import RunningPlatform, deploy_and_wait, wait_for_deployment, write_job

from trackside.build.artifacts import build_tag
from trackside.infra.docker.engine import DockerEngine

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# One name per test: parallel tests share the docker engine, and these look at every container of a job.
NAME = "regen"
BROKEN_NAME = "regen-broken"


@pytest.fixture
def platform(tmp_path: Path, database_url: str) -> Iterator[RunningPlatform]:
    with platform_with_docker(tmp_path, database_url) as running:
        yield running


def containers_by_tag(engine: DockerEngine, name: str = NAME) -> dict[str, int]:
    out = engine.run(
        ["ps", "-a", "--filter", f"label=trackside.job-name={name}", "--format", '{{.Label "trackside.tag"}}']
    ).stdout.split()
    return {tag: out.count(tag) for tag in set(out)}


def which(platform: RunningPlatform, name: str = NAME) -> str:
    return serving_generation(platform, name)


def test_forced_redeploy_serves_every_call_and_leaves_only_the_new_containers(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    engine = require_engine()
    job_dir = write_job(tmp_path / "job", NAME, generation_source("old"), extra="infrastructure_target: docker\n")
    assert deploy_and_wait(platform, job_dir)["status"] == "done"
    old_tag = platform.http.get(f"{platform.api}/job/{NAME}/0.0.1").json()["image_tag"]
    assert which(platform) == "old"

    (job_dir / "job.py").write_text(generation_source("new", import_delay=2.0))  # unready for 2 s after it starts
    with CallLoop(platform, NAME) as loop:
        redeployed = deploy_and_wait(platform, job_dir, force=True)
        during = loop.ok
    assert redeployed["status"] == "done", redeployed
    assert loop.failures == []
    assert during > 0
    assert which(platform) == "new"
    job = platform.http.get(f"{platform.api}/job/{NAME}/0.0.1").json()
    assert job["status"] == "running" and job["image_tag"] != old_tag
    assert containers_by_tag(engine) == {job["image_tag"]: 1}  # the old generation is gone
    logs = platform.http.get(f"{platform.api}/job/{NAME}/0.0.1/build-logs").json()["logs"]
    assert "removing the previous replicas" in logs


def test_a_forced_redeploy_that_never_gets_ready_is_removed_and_the_old_one_keeps_serving(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    engine = require_engine()
    job_dir = write_job(
        tmp_path / "job", BROKEN_NAME, generation_source("old"), extra="infrastructure_target: docker\n"
    )
    assert deploy_and_wait(platform, job_dir)["status"] == "done"
    old_tag = platform.http.get(f"{platform.api}/job/{BROKEN_NAME}/0.0.1").json()["image_tag"]

    (job_dir / "job.py").write_text(generation_source("broken", import_delay=1.0, broken=True))
    with CallLoop(platform, BROKEN_NAME) as loop:
        failed = deploy_and_wait(platform, job_dir, force=True)
    assert failed["status"] == "failed", failed
    assert "this generation is broken" in failed["error"]
    assert loop.failures == [] and loop.ok > 0
    assert which(platform, BROKEN_NAME) == "old"
    assert containers_by_tag(engine, BROKEN_NAME) == {old_tag: 1}  # the failed generation was removed
    assert platform.http.get(f"{platform.api}/job/{BROKEN_NAME}/0.0.1").json()["image_tag"] == old_tag


def test_a_redeploy_and_a_reprovision_serve_every_call_of_four_clients(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    engine = require_engine()
    name = "regen-four"
    job_dir = write_job(tmp_path / "job", name, generation_source("old"), extra="infrastructure_target: docker\n")
    assert deploy_and_wait(platform, job_dir)["status"] == "done"
    (job_dir / "job.py").write_text(generation_source("new", import_delay=1.0))

    with Callers(platform.url, platform.auth, name, "0.0.1", clients=4) as callers:
        forced = deploy_and_wait(platform, job_dir, force=True)
        built = platform.http.get(f"{platform.api}/job/{name}/0.0.1").json()["image_tag"]
        reprovisioned = platform.http.post(f"{platform.api}/job/{name}/0.0.1/reprovision")
        assert reprovisioned.status_code == 202, reprovisioned.text
        reprovision = wait_for_deployment(platform.api, reprovisioned.json()["id"])
        during = callers.calls()
        while callers.calls() < during + 20:
            time.sleep(0.05)
    assert (forced["status"], reprovision["status"]) == ("done", "done"), (forced, reprovision)
    assert callers.failures == [], callers.failures[:10]
    assert which(platform, name) == "new"
    job = platform.http.get(f"{platform.api}/job/{name}/0.0.1").json()
    # New containers of the same image, under a deployment tag of their own; the others retired.
    assert job["image_tag"] != built and build_tag(job["image_tag"]) == built
    assert containers_by_tag(engine, name) == {job["image_tag"]: 1}
