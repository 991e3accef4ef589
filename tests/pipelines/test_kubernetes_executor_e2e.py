"""The kubernetes executor in a real `trackside up`, on the real single-node cluster (1.20) of ../shared/k8s.

Steps are `batch/v1` Jobs running `trackside/python3-base:bookworm` (the engine's image, which the
kubelet uses as it is: pulling is off), mapped from `busybox` by `pipeline_images` as on docker.
chainr's README pipeline runs golden; a cancel deletes the running step's Job and pod; a SIGKILLed
platform, started again, re-attaches to the Job that kept running, never re-runs the step that had
succeeded, and leaves no Job behind (chainr's recycler re-ran everything and orphaned its Jobs).
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import fresh_database
from tests.pipelines.conftest import LOCAL_ENV
from tests.pipelines.support import (
    ENV_AND_OUTPUTS_PIPELINE,
    README_GOLDEN_JOBS,
    README_PIPELINE,
    chainr_view,
    crash_pipeline,
    kill_hard,
    step_status,
    wait_for_run,
)
from tests.support.kubernetes import KubeCluster, fresh_namespace
from tests.support.platform import RunningPlatform, start_platform
from tests.support.polling import wait_until

from trackside.infra.kubernetes.api import KubeApi
from trackside.pipelines.executors.base import StepLaunch
from trackside.pipelines.executors.kubernetes import KubernetesExecutor, step_job

pytestmark = [pytest.mark.kubernetes, pytest.mark.docker, pytest.mark.slow, pytest.mark.store]

DATABASES = ["database_url", "postgres_url"]


@dataclass
class KubePipelines:
    platform: RunningPlatform
    cluster: KubeCluster
    namespace: str
    api: KubeApi


def kube_env(cluster: KubeCluster, namespace: str, **extra: str) -> dict[str, str]:
    return {
        **LOCAL_ENV,
        "TRACKSIDE_KUBERNETES_CONFIG": str(cluster.kubeconfig),
        "TRACKSIDE_KUBERNETES_NAMESPACE": namespace,
        **extra,
    }


@pytest.fixture(scope="module")
def kube_pipelines(tmp_path_factory: pytest.TempPathFactory, kube_cluster: KubeCluster) -> Iterator[KubePipelines]:
    """One `trackside up` with the cluster found (its kubeconfig) and a namespace of its own, for the module."""
    directory = tmp_path_factory.mktemp("kube-pipelines")
    with fresh_namespace(kube_cluster) as namespace, fresh_database(directory) as url:
        running = start_platform(directory / "data", url, extra_env=kube_env(kube_cluster, namespace), timeout=180)
        try:
            with kube_cluster.api(namespace) as api:
                yield KubePipelines(running, kube_cluster, namespace, api)
        finally:
            running.stop()


def submit(platform: RunningPlatform, body: dict[str, Any]) -> str:
    response = platform.http.post(f"{platform.url}/api/runs", json={**body, "executor": "kubernetes"})
    assert response.status_code == 202, response.text
    return str(response.json()["metadata"]["uid"])


def run_on_kubernetes(kube: KubePipelines, body: dict[str, Any]) -> dict[str, Any]:
    uid = submit(kube.platform, body)
    return wait_for_run(kube.platform.http, kube.platform.url, uid, timeout=240)


def jobs_of(api: KubeApi, uid: str) -> list[str]:
    return sorted(job["metadata"]["name"] for job in api.items("Job", f"trackside.pipeline.run={uid}"))


def pods_of(api: KubeApi, uid: str) -> list[dict[str, Any]]:
    return api.items("Pod", f"trackside.pipeline.run={uid}")


def step_log(platform: RunningPlatform, uid: str, job: str) -> str:
    return platform.http.get(f"{platform.url}/api/runs/{uid}/jobs/{job}/logs").text


def kubectl_exec(cluster: KubeCluster, namespace: str, pod: str, *command: str) -> None:
    # No check: the step may end (and its pod stop) before `kubectl exec` itself returns.
    kubectl = ["kubectl", "--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
    subprocess.run([*kubectl, "exec", pod, "-c", "main", "--", *command], capture_output=True, timeout=60)


def test_the_readme_pipeline_runs_golden_on_kubernetes(kube_pipelines: KubePipelines) -> None:
    run = run_on_kubernetes(kube_pipelines, README_PIPELINE)
    assert chainr_view(run)["jobs"] == README_GOLDEN_JOBS
    assert run["status"] == "SUCCESSFUL"
    assert {job["executor"] for job in run["jobs"]} == {"kubernetes"}
    uid = run["metadata"]["uid"]
    wait_until(lambda: jobs_of(kube_pipelines.api, uid) == [], timeout=120, what="the step Jobs deleted")
    wait_until(lambda: pods_of(kube_pipelines.api, uid) == [], timeout=120, what="the step pods deleted")


def test_a_kubernetes_step_gets_its_env_and_publishes_outputs_and_logs(kube_pipelines: KubePipelines) -> None:
    body = ENV_AND_OUTPUTS_PIPELINE
    run = run_on_kubernetes(kube_pipelines, body)
    jobs = {job["name"]: job for job in run["jobs"]}
    assert jobs["count"]["outputs"] == {"twice": "40"}
    assert jobs["fail"]["status"] == "FAILED" and jobs["fail"]["reason"] == "exited with code 7"
    assert run["status"] == "SUCCESSFUL"
    log = step_log(kube_pipelines.platform, run["metadata"]["uid"], "count")
    assert "::output twice=40" in log and "done" in log


def test_an_image_the_node_lacks_fails_the_step_without_a_pull(kube_pipelines: KubePipelines) -> None:
    body = {"kind": "Pipeline", "jobs": {"x": {"image": "nowhere.invalid/ghost:1", "run": "true"}}}
    run = run_on_kubernetes(kube_pipelines, body)
    reason = run["jobs"][0]["reason"]
    assert run["status"] == "FAILED"
    assert "image nowhere.invalid/ghost:1 is not on the cluster's node and pulling is off" in reason
    assert "pipeline_images" in reason
    uid = run["metadata"]["uid"]
    wait_until(lambda: jobs_of(kube_pipelines.api, uid) == [], timeout=120, what="the failed step's Job deleted")


def test_a_step_past_its_timeout_is_killed_and_fails(kube_pipelines: KubePipelines) -> None:
    body = {"kind": "Pipeline", "jobs": {"slow": {"image": "busybox", "run": "sleep 600", "timeoutSeconds": 3}}}
    run = run_on_kubernetes(kube_pipelines, body)
    assert run["status"] == "FAILED"
    assert run["jobs"][0]["reason"].startswith("timed out after 3"), run["jobs"][0]
    uid = run["metadata"]["uid"]
    wait_until(lambda: pods_of(kube_pipelines.api, uid) == [], timeout=120, what="the timed-out step's pod gone")


def test_cancel_deletes_the_running_steps_job_and_pod(kube_pipelines: KubePipelines) -> None:
    platform, api = kube_pipelines.platform, kube_pipelines.api
    body = {
        "kind": "Pipeline",
        "jobs": {
            "forever": {"image": "busybox", "run": "echo started; while true; do sleep 1; done"},
            "later": {"image": "busybox", "run": "true", "dependsOn": [{"job": "forever"}]},
        },
    }
    uid = submit(platform, body)
    wait_until(lambda: "started" in step_log(platform, uid, "forever"), timeout=120, what="the step running")
    assert jobs_of(api, uid) == [f"ts-{uid[:8]}-forever-1"]
    response = platform.http.post(f"{platform.url}/api/runs/{uid}/cancel")
    assert response.status_code < 300, response.text
    run = wait_for_run(platform.http, platform.url, uid, timeout=120)
    assert run["status"] == "CANCELED"
    assert [(job["name"], job["status"]) for job in run["jobs"]] == [("forever", "CANCELED"), ("later", "SKIPPED")]
    wait_until(lambda: jobs_of(api, uid) == [], timeout=120, what="the canceled step's Job deleted")
    wait_until(lambda: pods_of(api, uid) == [], timeout=120, what="the canceled step's pod deleted")


@pytest.mark.parametrize(
    ("database", "ends_while_down"),
    [("database_url", False), ("postgres_url", False), ("database_url", True)],
    ids=["sqlite", "postgres", "sqlite-step-ends-while-down"],
)
def test_a_killed_platform_reattaches_to_the_job_that_kept_running(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    database: str,
    ends_while_down: bool,
    kube_cluster: KubeCluster,
    kube_namespace: str,
) -> None:
    """The step running at the crash is watched again to its end, whether it ends after the restart or
    while the platform is down; nothing runs twice and no Job is left."""
    url: str = request.getfixturevalue(database)
    env = kube_env(kube_cluster, kube_namespace)
    pipeline = crash_pipeline("kubernetes")
    with kube_cluster.api(kube_namespace) as api:

        def wait_pod_running() -> bool:
            pods = [p for p in pods_of(api, uid) if p["metadata"]["labels"].get("job-name") == job]
            return bool(pods) and (pods[0].get("status") or {}).get("phase") == "Running"

        first = start_platform(tmp_path / "data", url, extra_env=env, timeout=180)
        try:
            uid = first.http.post(f"{first.url}/api/runs", json=pipeline).json()["metadata"]["uid"]
            job = f"ts-{uid[:8]}-wait-1"
            wait_until(lambda: step_status(first, uid, "wait") == "RUNNING", timeout=120, what="step wait running")
            wait_until(wait_pod_running, timeout=120, what="the wait step's pod running")
            assert step_status(first, uid, "prepare") == "SUCCESSFUL"
            kill_hard(first)
        finally:
            first.stop()
        # The Job outlives the platform; the succeeded step's Job was deleted once recorded.
        wait_until(lambda: jobs_of(api, uid) == [job], timeout=120, what="only the running step's Job left")
        assert wait_pod_running()
        (pod,) = [p["metadata"]["name"] for p in pods_of(api, uid)]
        if ends_while_down:
            kubectl_exec(kube_cluster, kube_namespace, pod, "touch", "/tmp/go")
            wait_until(lambda: api.get("Pod", pod)["status"].get("phase") == "Succeeded", timeout=120)
        second = start_platform(tmp_path / "data", url, extra_env=env, timeout=180)
        try:
            wait_until(lambda: "started" in step_log(second, uid, "wait"), timeout=120, what="the log followed again")
            if not ends_while_down:
                assert jobs_of(api, uid) == [job]  # re-attached: no second Job, and `prepare` not started again
                kubectl_exec(kube_cluster, kube_namespace, pod, "touch", "/tmp/go")
            run = wait_for_run(second.http, second.url, uid, timeout=180)
            assert run["status"] == "SUCCESSFUL", run
            jobs = {j["name"]: j for j in run["jobs"]}
            assert jobs["wait"]["outputs"] == {"said": "hello"}
            assert [j["attempt"] for j in run["jobs"]] == [1, 1, 1]
            assert [[a["status"] for a in j["attempts"]] for j in run["jobs"]] == [["SUCCESSFUL"]] * 3
            # every step Job is deleted once recorded: none orphaned, none doubled
            wait_until(lambda: jobs_of(api, uid) == [], timeout=120, what="the run's Jobs deleted")
        finally:
            second.stop()


def test_attach_finds_an_attempts_job_by_its_labels_and_a_sweep_deletes_finished_leftovers(
    tmp_path: Path, kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    """Without a handle (a crash between creating the Job and recording it) the attempt's Job is found by
    its labels, never another attempt's; a finished Job nobody recorded is deleted by the sweep, and a
    running one is not."""
    platform_id = uuid.uuid4().hex
    run = str(uuid.uuid4())

    def attempt(job: str, number: int, command: str) -> StepLaunch:
        return StepLaunch(run, job, number, "busybox", command, {}, tmp_path, tmp_path / "log")

    with kube_cluster.api(kube_namespace) as api:
        executor = KubernetesExecutor(api, platform_id, orphan_after=0)
        done, running = attempt("Done_Step", 1, "true"), attempt("running", 1, "sleep 600")
        # Names other than the attempts' own: only their labels can find them.
        for launch, name in ((done, "other-done-step"), (running, "other-running")):
            api.create(step_job(launch, platform_id, "trackside/python3-base:bookworm", name=name))

        found = asyncio.run(executor.attach(done, None))
        assert found is not None and found["job"] == "other-done-step" and found["namespace"] == kube_namespace
        assert asyncio.run(executor.attach(attempt("Done_Step", 2, "true"), None)) is None
        assert asyncio.run(executor.attach(attempt("elsewhere", 1, "true"), None)) is None

        def finished() -> bool:
            job = api.get("Job", "other-done-step")
            return bool((job.get("status") or {}).get("succeeded"))

        wait_until(finished, timeout=120, what="the finished step's Job completed")
        assert asyncio.run(executor.sweep()) == 1
        wait_until(lambda: api.find("Job", "other-done-step") is None, timeout=120, what="the leftover Job deleted")
        assert api.find("Job", "other-running") is not None  # still running: not a leftover
