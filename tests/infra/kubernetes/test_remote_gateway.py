"""Racetrack's remote gateway mode with the kubernetes target, on the real single-node cluster.

The lifecycle and the main gateway (`trackside up`) run outside the cluster; a target of
`kubernetes_targets` names a remote gateway (`remote_gateway_url`, `remote_gateway_token`): a gateway of
its own (`trackside serve gateway` with `gateway_remote_token`) that reaches the jobs' pods. Calls to
the target's jobs through the main gateway are delegated to it with the token; it serves only those,
asking the lifecycle about the caller itself, and the main gateway never calls the pods directly.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from tests.conftest import EXAMPLES
from tests.infra.docker.support import TEST_NAMESPACE, remove_jobs, require_engine, require_registry, unique
from tests.support.kubernetes import KubeCluster
from tests.support.platform import RunningPlatform, deploy_and_wait, start_platform, start_trackside
from tests.support.ports import free_port

from trackside.gateway.server import REMOTE_REFUSED

pytestmark = [pytest.mark.kubernetes, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(900)]

TARGET = "remote-cluster"


@dataclass
class RemoteSetup:
    platform: RunningPlatform  # lifecycle and main gateway, outside the cluster
    remote: RunningPlatform  # the remote gateway
    token: str  # the remote gateway's token
    job: str

    @property
    def remote_pub(self) -> str:
        return f"{self.remote.url}/pub"

    def call(self, base: str, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{base}/job/{self.job}/latest/api/v1/perform", json={"a": 40, "b": 2}, headers=headers)


@pytest.fixture
def remote_setup(
    tmp_path: Path, database_url: str, kube_cluster: KubeCluster, kube_namespace: str
) -> Iterator[RemoteSetup]:
    engine = require_engine()
    require_registry()
    token = secrets.token_urlsafe(24)
    remote_port = free_port()
    target = {
        "kubeconfig": str(kube_cluster.kubeconfig),
        "namespace": kube_namespace,
        "remote_gateway_url": f"http://127.0.0.1:{remote_port}/pub",
        "remote_gateway_token": token,
    }
    platform = start_platform(
        tmp_path / "data",
        database_url,
        extra_env={
            "TRACKSIDE_DOCKER_REGISTRY": "127.0.0.1:5000",
            "TRACKSIDE_DOCKER_REGISTRY_NAMESPACE": TEST_NAMESPACE,
            "TRACKSIDE_KUBERNETES_CONFIG": "off",
            "TRACKSIDE_KUBERNETES_TARGETS": json.dumps({TARGET: target}),
        },
    )
    remote: RunningPlatform | None = None
    job = unique("remote-adder-")
    try:
        remote = start_trackside(
            ["serve", "gateway", "--lifecycle-url", platform.api.removesuffix("/api/v1")],
            tmp_path / "remote-gateway",
            database_url,
            port=remote_port,
            extra_env={"TRACKSIDE_GATEWAY_REMOTE_TOKEN": token},
            health_path="/pub/health",
        )
        directory = tmp_path / job
        shutil.copytree(EXAMPLES / "adder", directory)
        manifest = yaml.safe_load((directory / "job.yaml").read_text())
        manifest.update(name=job, infrastructure_target=TARGET)
        (directory / "job.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        deployed = deploy_and_wait(platform, directory)
        assert deployed["status"] == "done", deployed
        yield RemoteSetup(platform, remote, token, job)
    finally:
        if remote is not None and remote.process.poll() is None:
            remote.stop(check_logs=False)
        platform.stop()
        remove_jobs(engine, job)


def test_the_main_gateway_delegates_the_targets_calls_to_the_remote_gateway(remote_setup: RemoteSetup) -> None:
    setup = remote_setup
    answer = setup.call(f"{setup.platform.url}/pub", setup.platform.auth)
    assert answer.status_code == 200, answer.text
    assert answer.json() == 42
    metrics = httpx.get(f"{setup.remote_pub}/metrics").text
    assert f'pub_job_proxy_requests_total{{job_name="{setup.job}",job_version="0.0.1"}} 1' in metrics, metrics

    # Without the remote gateway, the main one has no way to the job: it never calls the pods itself.
    setup.remote.stop(check_logs=False)
    cut = setup.call(f"{setup.platform.url}/pub", setup.platform.auth)
    assert cut.status_code == 502, cut.text


def test_the_remote_gateway_serves_only_calls_with_its_token_and_still_checks_the_caller(
    remote_setup: RemoteSetup,
) -> None:
    setup = remote_setup
    direct = setup.call(setup.remote_pub, setup.platform.auth)
    assert direct.status_code == 401
    assert direct.json()["error"] == REMOTE_REFUSED
    wrong = setup.call(setup.remote_pub, {**setup.platform.auth, "X-Racetrack-Gateway-Token": "not-the-token"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == REMOTE_REFUSED

    gateway_only = setup.call(setup.remote_pub, {"X-Racetrack-Gateway-Token": setup.token})
    assert gateway_only.status_code == 401, "the gateway token does not stand for a caller"
    both = setup.call(setup.remote_pub, {**setup.platform.auth, "X-Racetrack-Gateway-Token": setup.token})
    assert both.status_code == 200, both.text
    assert both.json() == 42
