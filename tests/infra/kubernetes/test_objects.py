"""Every object the kubernetes target generates is valid for current Kubernetes (1.29 and later, strict).

The test cluster is 1.20; these schemas make sure nothing relies on what only an old API server accepts.
The objects are made by the target's own code (`KubernetesJobDeployer.workload` and `objects`), not
written here.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from trackside.config import Settings
from trackside.domain import JobSecrets
from trackside.infra.kubernetes import objects
from trackside.infra.kubernetes.api import KubeApi
from trackside.infra.kubernetes.cluster import ClusterConfig
from trackside.infra.kubernetes.deployer import KubernetesJobDeployer
from trackside.infra.kubernetes.naming import LABEL_BACKUP, label_value, resource_name
from trackside.infra.kubernetes.workloads import JobWorkloads
from trackside.manifest.load import parse_manifest

VERSIONS = ["1.29.0", "1.31.0", "1.33.0", kubernetes_validate.latest_version()]
PLATFORM = "0123456789abcdef0123456789abcdef"
TAG = "2025-01-02T030405-ab12+c0ffee"


def deployer(job_address: str = "pod") -> KubernetesJobDeployer:
    # Nothing is called: the API client is only made, never used.
    api = KubeApi(ClusterConfig(server="https://127.0.0.1:1", namespace="jobs"))
    return KubernetesJobDeployer("kubernetes", JobWorkloads(api, "kubernetes", PLATFORM), job_address=job_address)


def manifest(**extra: Any) -> Any:
    raw = {
        "name": "adder",
        "owner_email": "t@example.com",
        "version": "1.2.3-rc.1+build.5",
        "jobtype": "python3:latest",
        "jobtype_extra": {"entrypoint_path": "job.py"},
        **extra,
    }
    return parse_manifest(raw, source="test manifest")


def generated(tmp_path: Path, **extra: Any) -> list[dict[str, Any]]:
    settings = Settings(data_dir=tmp_path, docker_registry="127.0.0.1:5000")
    target = deployer()
    workload = target.workload(
        manifest(**extra),
        settings,
        TAG,
        {"JOB_NAME": "adder", "JOB_VERSION": "1.2.3-rc.1+build.5", "PUB_URL": "http://gw/pub", "X": "1"},
        runtime_secret_vars={"AUTH_TOKEN": "token-value", "DB_PASSWORD": "pw"},
    )
    secrets = JobSecrets(git_credentials={"username": "u", "password": "p"}, secret_runtime_env={"DB_PASSWORD": "pw"})
    return [
        objects.deployment(workload),
        objects.runtime_env_secret(workload),
        objects.job_secrets_secret(PLATFORM, "kubernetes", "adder", "1.2.3-rc.1+build.5", secrets),
        objects.service(PLATFORM, "kubernetes", "adder", "1.2.3-rc.1+build.5"),
        objects.service(PLATFORM, "kubernetes", "adder", "1.2.3-rc.1+build.5", node_port=True),
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_generated_object_passes_strict_validation_for_current_kubernetes(tmp_path: Path, version: str) -> None:
    resources = {"memory_min": "64Mi", "memory_max": "256Mi", "cpu_min": "100m", "cpu_max": "1.5"}
    for obj in generated(tmp_path, replicas=3, resources=resources):
        kubernetes_validate.validate(obj, version, strict=True)


def test_validation_catches_what_a_strict_schema_refuses() -> None:
    # The check above can fail: an unknown field in a container is refused in strict mode.
    bad = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 80, "targetPorts": 80}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, VERSIONS[0], strict=True)


def test_deployment_carries_replicas_env_probes_resources_and_labels(tmp_path: Path) -> None:
    resources = {"memory_min": "64Mi", "memory_max": "256Mi", "cpu_min": "100m", "cpu_max": "1.5"}
    deployment, env_secret, job_secrets, service, _ = generated(tmp_path, replicas=3, resources=resources)
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    container = spec["template"]["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["PORT"] == "7000" and env["JOB_NAME"] == "adder" and env["PUB_URL"] == "http://gw/pub"
    assert "AUTH_TOKEN" not in env and "DB_PASSWORD" not in env  # secrets travel in the Secret only
    assert container["envFrom"] == [{"secretRef": {"name": env_secret["metadata"]["name"]}}]
    secret_values = {k: base64.b64decode(v).decode() for k, v in env_secret["data"].items()}
    assert secret_values == {"AUTH_TOKEN": "token-value", "DB_PASSWORD": "pw"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["resources"] == {
        "requests": {"memory": str(64 * 2**20), "cpu": "100m"},
        "limits": {"memory": str(256 * 2**20), "cpu": "1500m"},
    }
    assert container["image"].startswith("127.0.0.1:5000/trackside/job-entrypoint/adder:2025-01-02T030405-ab12")
    labels = spec["template"]["metadata"]["labels"]
    assert labels["trackside.io/job-name"] == "adder"
    assert labels["trackside.io/job-version"] == label_value("1.2.3-rc.1+build.5")
    assert labels["trackside.io/tag"] == label_value(TAG)
    assert labels["trackside.io/platform"] == PLATFORM
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["trackside.io/job-version"] == "1.2.3-rc.1+build.5" and annotations["trackside.io/tag"] == TAG
    # Both Secrets are found by the backup label; the Service selects every pod of the version.
    assert env_secret["metadata"]["labels"][LABEL_BACKUP] == "true"
    assert job_secrets["metadata"]["labels"][LABEL_BACKUP] == "true"
    assert service["metadata"]["name"] == resource_name("adder", "1.2.3-rc.1+build.5")
    assert set(service["spec"]["selector"].items()) <= set(labels.items())
    assert "trackside.io/deployment" not in service["spec"]["selector"]


def test_job_secrets_read_back_as_saved(tmp_path: Path) -> None:
    secrets = JobSecrets(git_credentials={"username": "u"}, secret_build_env={"A": "1"}, secret_runtime_env={"B": "2"})
    obj = objects.job_secrets_secret(PLATFORM, "kubernetes", "adder", "1.0.0", secrets)
    assert objects.read_job_secrets(obj) == secrets
