"""The kubernetes target's parts on the real cluster: rollout failures, the pod watch, logs, adoption.

Images are built by the image builder the docker target uses and pushed to the test registry, as the
platform does; each test works in a namespace of its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.infra.docker.support import (
    build,
    docker_settings,
    dockerfile_manifest,
    remove_images,
    require_engine,
    require_registry,
    unique,
)
from tests.support.kubernetes import KubeCluster

from trackside.config import Settings
from trackside.domain import JobDto, JobFamilyDto, JobSecrets
from trackside.errors import DeployFailed, NotFound
from trackside.infra.docker.engine import DockerEngine
from trackside.infra.kubernetes import KubernetesTarget, TargetConfig, build_kubernetes_target
from trackside.infra.kubernetes import api as api_module
from trackside.infra.kubernetes.cluster import from_kubeconfig

pytestmark = [pytest.mark.kubernetes, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

# A job program of its own (the dockerfile job type): answers /live, /ready and every call.
SERVER = """\
import http.server, json, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"live": True, "deployment_timestamp": int(os.environ.get("JOB_DEPLOYMENT_TIMESTAMP", 0)),
                           "secret": os.environ.get("SECRET_VALUE")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        print("served", self.path, flush=True)
print("listening", os.environ["PORT"], flush=True)
http.server.HTTPServer((os.environ["JOB_HOST"], int(os.environ["PORT"])), H).serve_forever()
"""
DOCKERFILE = (
    'FROM trackside/python3-base:bookworm\nCOPY server.py /app/server.py\nCMD ["python3", "-u", "/app/server.py"]\n'
)


@pytest.fixture
def setup(
    tmp_path: Path, kube_cluster: KubeCluster, kube_namespace: str
) -> Iterator[tuple[KubernetesTarget, Settings]]:
    require_registry()
    settings = docker_settings(tmp_path, docker_registry="127.0.0.1:5000", job_live_timeout=60, job_ready_timeout=60)
    cluster = from_kubeconfig(kube_cluster.kubeconfig)
    cluster.namespace = kube_namespace
    target = build_kubernetes_target(settings, "kubernetes", TargetConfig(), cluster)
    try:
        yield target, settings
    finally:
        assert target.close is not None
        target.close()


@pytest.fixture
def engine() -> DockerEngine:
    return require_engine()


def build_server(engine: DockerEngine, settings: Settings, tmp_path: Path, name: str, **extra: Any) -> tuple[Any, str]:
    manifest = dockerfile_manifest(name, infrastructure_target="kubernetes", **extra)
    tag = unique("t-")
    image = build(
        engine, settings, tmp_path / unique("w"), manifest, {"server.py": SERVER, "Dockerfile": DOCKERFILE}, tag=tag
    )
    return manifest, image


def deploy(target: KubernetesTarget, settings: Settings, manifest: Any, tag: str, beside: bool = False) -> JobDto:
    deployer = target.job_deployer
    assert deployer is not None
    env = {
        "JOB_NAME": manifest.name,
        "JOB_VERSION": manifest.version,
        "JOB_DEPLOYMENT_TIMESTAMP": str(int(time.time())),
        "PUB_URL": "http://127.0.0.1:1/pub",
    }
    method = target.side_by_side.deploy_beside if beside and target.side_by_side else deployer.deploy_job
    return method(manifest, settings, None, tag, env, JobFamilyDto(manifest.name), 1, {"SECRET_VALUE": "s3cr3t"})  # type: ignore[arg-type]


def eventually(check: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not true within {timeout}s")
        time.sleep(0.3)


def test_deploy_waits_for_ready_pods_lists_them_streams_their_logs_and_delete_removes_everything(
    setup: tuple[KubernetesTarget, Settings], engine: DockerEngine, tmp_path: Path
) -> None:
    target, settings = setup
    name = unique("k")
    manifest, image = build_server(engine, settings, tmp_path, name, replicas=2)
    tag = image.rpartition(":")[2]
    try:
        deployer, monitor, streamer = target.job_deployer, target.job_monitor, target.logs_streamer
        assert deployer is not None and monitor is not None and streamer is not None
        job = deploy(target, settings, manifest, tag)
        monitor.check_job_condition(job)
        assert len(job.replica_internal_names) == 2
        answered = httpx.get(f"http://{job.replica_internal_names[1]}/anything", timeout=10).json()
        assert answered["secret"] == "s3cr3t"  # the runtime secret reached the pod through its Secret

        listed = {(j.name, j.version): j for j in monitor.list_jobs(settings)}
        assert listed[(name, "0.0.1")].status == "running"
        assert sorted(listed[(name, "0.0.1")].replica_internal_names) == sorted(job.replica_internal_names)

        deployer.save_job_secrets(name, "0.0.1", JobSecrets(secret_runtime_env={"A": "b"}))
        assert deployer.get_job_secrets(name, "0.0.1").secret_runtime_env == {"A": "b"}

        lines: list[str] = []
        streamer.create_session(
            "s1", {"job_name": name, "job_version": "0.0.1", "tail": "0"}, lambda _, line: lines.append(line)
        )
        try:
            eventually(lambda: any("listening" in line for line in lines), what="the pods' output followed")
            for address in job.replica_internal_names:
                httpx.get(f"http://{address}/marker-call", timeout=10)
            eventually(
                lambda: sum("served /marker-call" in line for line in lines) == 2, what="new lines of both replicas"
            )
            assert {line.split("]")[0] for line in lines} == {"[replica-0", "[replica-1"}
        finally:
            streamer.close_session("s1")
        assert "listening" in monitor.read_recent_logs(job)

        assert deployer.job_exists(name, "0.0.1")
        deployer.delete_job(name, "0.0.1")
        assert not deployer.job_exists(name, "0.0.1")
        with pytest.raises(NotFound):
            deployer.get_job_secrets(name, "0.0.1")
        eventually(lambda: monitor.list_jobs(settings) == [], what="the pods gone from the watch")
    finally:
        remove_images(engine, image)


def test_an_image_that_cannot_be_pulled_fails_the_deploy_naming_it(
    setup: tuple[KubernetesTarget, Settings],
) -> None:
    target, settings = setup
    manifest = dockerfile_manifest(unique("k"), infrastructure_target="kubernetes")
    job = deploy(target, settings, manifest, "no-such-build")
    assert target.job_monitor is not None
    with pytest.raises(DeployFailed, match="ErrImagePull|ImagePullBackOff"):
        target.job_monitor.check_job_condition(job)


def test_an_unschedulable_pod_fails_the_deploy_with_the_schedulers_reason(
    setup: tuple[KubernetesTarget, Settings], engine: DockerEngine, tmp_path: Path
) -> None:
    target, settings = setup
    manifest = dockerfile_manifest(unique("k"), infrastructure_target="kubernetes", resources={"cpu_min": "500"})
    with pytest.raises(DeployFailed, match="unschedulable.*Insufficient cpu"):
        deploy(target, settings, manifest, "any-build")
    assert target.job_deployer is not None and not target.job_deployer.job_exists(manifest.name, manifest.version)


def test_a_closed_watch_is_listed_again_and_sees_what_changed_meanwhile(
    setup: tuple[KubernetesTarget, Settings], engine: DockerEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_module, "WATCH_TIMEOUT_S", 1)  # the API server ends every watch after 1 s
    target, settings = setup
    assert target.workloads is not None and target.job_monitor is not None
    watcher = target.workloads.watcher
    watcher.start()
    eventually(lambda: watcher.lists >= 3, what="the watch listed again after the server closed it")
    name = unique("k")
    manifest, image = build_server(engine, settings, tmp_path, name)
    try:
        job = deploy(target, settings, manifest, image.rpartition(":")[2])
        target.job_monitor.check_job_condition(job)
        eventually(
            lambda: [j.status for j in target.job_monitor.list_jobs(settings)] == ["running"],  # type: ignore[union-attr]
            what="the new pods seen through the re-listed watch",
        )
        assert watcher.synced
    finally:
        remove_images(engine, image)


def test_a_forced_redeploy_runs_beside_and_retires_the_previous_deployment(
    setup: tuple[KubernetesTarget, Settings], engine: DockerEngine, tmp_path: Path
) -> None:
    target, settings = setup
    name = unique("k")
    manifest, image = build_server(engine, settings, tmp_path, name)
    tag = image.rpartition(":")[2]
    beside = target.side_by_side
    assert beside is not None and target.job_monitor is not None
    try:
        first = deploy(target, settings, manifest, tag)
        target.job_monitor.check_job_condition(first)
        second = deploy(target, settings, manifest, f"{tag}+abc123", beside=True)
        target.job_monitor.check_job_condition(second)
        assert set(first.replica_internal_names).isdisjoint(second.replica_internal_names)
        stop = threading.Event()
        errors: list[str] = []

        def new_pods_keep_answering() -> None:
            while not stop.is_set():
                try:
                    httpx.get(f"http://{second.replica_internal_names[0]}/x", timeout=5)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

        caller = threading.Thread(target=new_pods_keep_answering)
        caller.start()
        beside.retire_previous(name, manifest.version, keep_tag=f"{tag}+abc123")
        stop.set()
        caller.join()
        assert errors == []
        assert target.workloads is not None
        deployments = target.workloads.objects("Deployment", name, manifest.version)
        assert [d["metadata"]["annotations"]["trackside.io/tag"] for d in deployments] == [f"{tag}+abc123"]
    finally:
        remove_images(engine, image)
