"""The kubernetes target inside a real `trackside up`, against the real single-node cluster.

Jobs are built on this host's Docker engine, pushed to the test registry (127.0.0.1:5000), run as
pods by the cluster's kubelet, and called through the platform's gateway at their pod addresses.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import EXAMPLES
from tests.infra.docker.support import TEST_NAMESPACE, CallLoop, remove_jobs, require_engine, require_registry
from tests.support.kubernetes import KubeCluster
from tests.support.platform import RunningPlatform, deploy_directory, start_platform, wait_for_deployment

from trackside.infra.kubernetes.api import KubeApi
from trackside.infra.kubernetes.naming import LABEL_BACKUP, LABEL_NAME

pytestmark = [pytest.mark.kubernetes, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

CRASHER_DOCKERFILE = (
    "FROM trackside/python3-base:bookworm\n"
    'CMD ["python3", "-c", "print(\'crash-marker: no config found\', flush=True); raise SystemExit(3)"]\n'
)


@pytest.fixture
def kube_platform(
    tmp_path: Path, database_url: str, kube_cluster: KubeCluster, kube_namespace: str
) -> Iterator[RunningPlatform]:
    engine = require_engine()
    require_registry()
    running = start_platform(
        tmp_path / "data",
        database_url,
        extra_env={
            "TRACKSIDE_DOCKER_REGISTRY": "127.0.0.1:5000",
            "TRACKSIDE_DOCKER_REGISTRY_NAMESPACE": TEST_NAMESPACE,
            "TRACKSIDE_KUBERNETES_CONFIG": str(kube_cluster.kubeconfig),
            "TRACKSIDE_KUBERNETES_NAMESPACE": kube_namespace,
            "TRACKSIDE_JOB_LIVE_TIMEOUT": "90",
            "TRACKSIDE_JOB_READY_TIMEOUT": "90",
        },
    )
    try:
        yield running
    finally:
        deployed = {job["name"] for job in running.http.get(f"{running.api}/job").json()}
        running.stop()
        remove_jobs(engine, *deployed)


def eventually(check: Callable[[], bool], timeout: float = 90, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not true within {timeout}s")
        time.sleep(0.5)


def deploy(platform: RunningPlatform, directory: Path, force: bool = False) -> dict[str, Any]:
    """Deploy through the API and wait (a cluster's first pull and start take longer than a container's)."""
    response = deploy_directory(platform, directory, force=force)
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = wait_for_deployment(
        platform.api, response.json()["id"], timeout=240, headers=platform.auth
    )
    return result


def job_dir(tmp_path: Path, name: str = "kadder") -> Path:
    directory = tmp_path / name
    shutil.copytree(EXAMPLES / "adder", directory)
    manifest = (directory / "job.yaml").read_text().replace("name: adder", f"name: {name}")
    (directory / "job.yaml").write_text(manifest + "infrastructure_target: kubernetes\nreplicas: 2\n")
    return directory


def test_adder_on_kubernetes_answers_through_the_gateway_redeploys_without_dropped_calls_and_deletes_cleanly(
    kube_platform: RunningPlatform, kube_cluster: KubeCluster, kube_namespace: str, kube_api: KubeApi, tmp_path: Path
) -> None:
    api = kube_api
    # Something of someone else's in the namespace: the target must never touch it.
    bystander = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bystander", "labels": {LABEL_NAME: "kadder"}},
        "stringData": {"x": "y"},
    }
    api.create(bystander)

    directory = job_dir(tmp_path)
    result = deploy(kube_platform, directory)
    assert result["status"] == "done", result
    http = kube_platform.http
    pub = f"{kube_platform.url}/pub/job/kadder/latest"
    assert http.post(f"{pub}/api/v1/perform", json={"a": 40, "b": 2}).json() == 42
    job = http.get(f"{kube_platform.api}/job/kadder/0.0.1").json()
    assert job["infrastructure_target"] == "kubernetes" and job["status"] == "running"
    assert len(job["replica_internal_names"]) == 2
    assert all(address.startswith("10.244.") for address in job["replica_internal_names"])

    # What it created: one Deployment of 2 ready pods, a Service, and the Secrets labelled for backup.
    selector = f"{LABEL_NAME}=kadder,trackside.io/target=kubernetes"
    deployments = api.items("Deployment", selector)
    assert len(deployments) == 1 and deployments[0]["spec"]["replicas"] == 2
    assert len(api.items("Service", selector)) == 1
    backed_up = api.items("Secret", f"{LABEL_BACKUP}=true")
    assert {s["metadata"]["labels"]["trackside.io/secret-kind"] for s in backed_up} == {"job-secrets", "runtime-env"}
    logs = http.get(f"{kube_platform.api}/job/kadder/0.0.1/logs", params={"tail": 50}).json()["logs"]
    assert "[replica-0]" in logs and "[replica-1]" in logs

    # A forced redeploy runs a new Deployment beside the serving one: no call is dropped.
    with CallLoop(kube_platform, "kadder") as calls:
        again = deploy(kube_platform, directory, force=True)
        time.sleep(1)
    assert again["status"] == "done", again
    assert calls.failures == [] and calls.ok > 0, calls.failures[:5]
    eventually(lambda: len(api.items("Deployment", selector)) == 1, what="the previous Deployment removed")

    # Delete removes everything it created, and nothing else.
    assert http.delete(f"{kube_platform.api}/job/kadder/0.0.1").status_code == 200
    for kind in ("Deployment", "Service", "Secret"):

        def gone(kind: str = kind) -> bool:
            return api.items(kind, selector) == []

        eventually(gone, what=f"every {kind} of the job removed")
    eventually(lambda: api.items("Pod", selector) == [], timeout=120, what="the job's pods gone")
    assert api.find("Secret", "bystander") is not None
    assert http.post(f"{pub}/api/v1/perform", json={"a": 1, "b": 1}).status_code == 404


def test_a_crash_looping_job_fails_its_deployment_with_the_reason_and_its_logs(
    kube_platform: RunningPlatform, kube_cluster: KubeCluster, kube_namespace: str, kube_api: KubeApi, tmp_path: Path
) -> None:
    directory = tmp_path / "crasher"
    directory.mkdir()
    (directory / "Dockerfile").write_text(CRASHER_DOCKERFILE)
    (directory / "job.yaml").write_text(
        "name: crasher\nowner_email: t@example.com\nversion: 1.0.0\njobtype: dockerfile:latest\n"
        "infrastructure_target: kubernetes\n"
    )
    result = deploy(kube_platform, directory)
    assert result["status"] == "failed", result
    assert "CrashLoopBackOff" in result["error"], result["error"]
    assert "crash-marker: no config found" in result["error"], result["error"]
    # The failed deployment left nothing running.
    api = kube_api
    eventually(lambda: api.items("Deployment", f"{LABEL_NAME}=crasher") == [], what="the failed Deployment removed")


def test_move_local_to_kubernetes_to_docker_without_a_failed_call_leaves_nothing_on_the_cluster(
    kube_platform: RunningPlatform, kube_cluster: KubeCluster, kube_namespace: str, kube_api: KubeApi, tmp_path: Path
) -> None:
    directory = job_dir(tmp_path, "kmover")
    manifest = (
        (directory / "job.yaml")
        .read_text()
        .replace("infrastructure_target: kubernetes", "infrastructure_target: local")
    )
    (directory / "job.yaml").write_text(manifest)
    assert deploy(kube_platform, directory)["status"] == "done"
    http = kube_platform.http
    api = kube_api
    selector = f"{LABEL_NAME}=kmover"
    with CallLoop(kube_platform, "kmover") as calls:
        moved = http.post(
            f"{kube_platform.api}/job/kmover/0.0.1/move", json={"infrastructure_target": "kubernetes"}, timeout=600
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["infrastructure_target"] == "kubernetes"
        on_kubernetes = calls.ok
        assert len(api.items("Deployment", selector)) == 1
        moved = http.post(
            f"{kube_platform.api}/job/kmover/0.0.1/move", json={"infrastructure_target": "docker"}, timeout=600
        )
        assert moved.status_code == 200, moved.text
        time.sleep(1)
    assert calls.failures == [], calls.failures[:5]
    assert on_kubernetes > 0 and calls.ok > on_kubernetes
    for kind in ("Deployment", "Service", "Secret"):

        def gone(kind: str = kind) -> bool:
            return api.items(kind, selector) == []

        eventually(gone, what=f"every {kind} of the moved job removed from the cluster")
