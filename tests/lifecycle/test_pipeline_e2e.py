"""The deploy pipeline on the local target of a real `trackside up`: a version being redeployed keeps serving.

Four clients call the job through the real gateway, by `latest` and by its exact version, all through a
forced redeploy, a redeploy and a reprovision, and through a forced redeploy that fails: not one call
may fail. At most one deployment of a version runs at a time.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.infra.local.localjob import pid_gone
from tests.support.calls import Callers, generation_source, serving_generation
from tests.support.platform import RunningPlatform, deploy_and_wait, deploy_directory, wait_for_deployment, write_job

from trackside.build.artifacts import build_tag
from trackside.infra.local.layout import LocalLayout
from trackside.infra.local.state import read_state

pytestmark = pytest.mark.slow


def replicas(platform: RunningPlatform, name: str) -> dict[str, list[int]]:
    """The job's local replicas by deployment tag: their pids, from the target's state files."""
    found: dict[str, list[int]] = {}
    for job, _, _, path in LocalLayout(platform.data_dir).state_files():
        state = read_state(path)
        if job == name and state is not None:
            found.setdefault(state.tag, []).append(state.pid)
    return found


def calling(platform: RunningPlatform, name: str) -> Callers:
    return Callers(platform.url, platform.auth, name, "0.0.1", clients=4)


def wait_for_calls(callers: Callers, count: int = 20) -> None:
    deadline = time.monotonic() + 30
    while callers.calls() < count:
        assert time.monotonic() < deadline, f"only {callers.calls()} calls in 30 s: {callers.failures[:5]}"
        time.sleep(0.05)


def test_forced_redeploy_redeploy_and_reprovision_serve_every_call_of_four_clients(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    name = "gapless"
    job_dir = write_job(tmp_path / "job", name, generation_source("old"))
    assert deploy_and_wait(platform, job_dir)["status"] == "done"
    (old_tag,) = replicas(platform, name)
    old_pids = replicas(platform, name)[old_tag]

    (job_dir / "job.py").write_text(generation_source("new", import_delay=1.0))  # unready for 1 s after it starts
    with calling(platform, name) as callers:
        wait_for_calls(callers)
        forced = deploy_and_wait(platform, job_dir, force=True)
        after_forced = callers.calls()
        redeployed = platform.http.post(f"{platform.api}/job/{name}/0.0.1/redeploy")
        assert redeployed.status_code == 202, redeployed.text
        redeploy = wait_for_deployment(platform.api, redeployed.json()["id"])
        built = platform.http.get(f"{platform.api}/job/{name}/0.0.1").json()["image_tag"]
        reprovisioned = platform.http.post(f"{platform.api}/job/{name}/0.0.1/reprovision")
        assert reprovisioned.status_code == 202, reprovisioned.text
        reprovision = wait_for_deployment(platform.api, reprovisioned.json()["id"])
        wait_for_calls(callers, callers.calls() + 20)
    assert (forced["status"], redeploy["status"], reprovision["status"]) == ("done", "done", "done"), (
        forced,
        redeploy,
        reprovision,
    )
    assert callers.failures == [], callers.failures[:10]
    assert after_forced > 20 and callers.ok > after_forced

    assert serving_generation(platform, name) == "new"
    job = platform.http.get(f"{platform.api}/job/{name}/0.0.1").json()
    assert job["status"] == "running"
    # The reprovision ran the redeploy's build again, under a deployment tag of its own.
    assert job["image_tag"] != built and build_tag(job["image_tag"]) == built
    assert list(replicas(platform, name)) == [job["image_tag"]]  # every earlier deployment retired
    assert all(pid_gone(pid) for pid in old_pids)
    assert (platform.data_dir / "builds" / name / "0.0.1" / built).is_dir()
    assert [p.name for p in (platform.data_dir / "builds" / name / "0.0.1").iterdir()] == [built]
    logs = platform.http.get(f"{platform.api}/job/{name}/0.0.1/build-logs").json()["logs"]
    assert "removing the previous replicas" in logs
    events = [e["event_type"] for e in platform.http.get(f"{platform.api}/audit/events/job/{name}/0.0.1").json()]
    assert events.count("job_redeployed") == 3 and events.count("job_deployed") == 1


def test_a_forced_redeploy_that_never_gets_ready_leaves_the_old_replicas_serving_every_call(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    name = "keeps-old"
    job_dir = write_job(tmp_path / "job", name, generation_source("old"))
    assert deploy_and_wait(platform, job_dir)["status"] == "done"
    old = platform.http.get(f"{platform.api}/job/{name}/0.0.1").json()

    (job_dir / "job.py").write_text(generation_source("broken", import_delay=1.0, broken=True))
    with calling(platform, name) as callers:
        wait_for_calls(callers)
        failed = deploy_and_wait(platform, job_dir, force=True)
        wait_for_calls(callers, callers.calls() + 20)
    assert failed["status"] == "failed", failed
    assert "this generation is broken" in failed["error"]
    assert callers.failures == [], callers.failures[:10]
    assert serving_generation(platform, name) == "old"
    job = platform.http.get(f"{platform.api}/job/{name}/0.0.1").json()
    assert (job["status"], job["image_tag"]) == ("running", old["image_tag"])
    assert job["replica_internal_names"] == old["replica_internal_names"]
    assert list(replicas(platform, name)) == [old["image_tag"]]  # the failed deployment's replicas are gone
    events = [e["event_type"] for e in platform.http.get(f"{platform.api}/audit/events/job/{name}/0.0.1").json()]
    assert "deployment_failed" in events


def test_one_deployment_of_a_version_at_a_time_the_others_are_refused_with_409(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    name = "one-at-a-time"
    job_dir = write_job(tmp_path / "job", name, generation_source("first"))
    assert deploy_and_wait(platform, job_dir)["status"] == "done"

    (job_dir / "job.py").write_text(generation_source("slow", import_delay=4.0))
    running = deploy_directory(platform, job_dir, force=True)
    assert running.status_code in (200, 201), running.text
    try:
        for attempt in (
            lambda: deploy_directory(platform, job_dir, force=True),
            lambda: platform.http.post(f"{platform.api}/job/{name}/0.0.1/redeploy"),
            lambda: platform.http.post(f"{platform.api}/job/{name}/0.0.1/reprovision"),
        ):
            refused = attempt()
            assert refused.status_code == 409, refused.text
            assert "already in progress" in refused.json()["error"]
    finally:
        done = wait_for_deployment(platform.api, running.json()["id"])
    assert done["status"] == "done", done
    again = platform.http.post(f"{platform.api}/job/{name}/0.0.1/redeploy")  # free again once it ended
    assert again.status_code == 202, again.text
    assert wait_for_deployment(platform.api, again.json()["id"])["status"] == "done"
