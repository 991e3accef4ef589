"""The objects a `kubernetes` target creates for a job, as plain API dicts (pure functions, no calls).

- a **Deployment** per deployment (generation) of a version: `replicas` from the manifest, the job
  contract's environment (`PORT`, `JOB_NAME`, `JOB_VERSION`, `PUB_URL`, ...), its secret part from a
  Secret (`envFrom`), resources from the manifest, a startup and a liveness probe on `/live` and a
  readiness probe on `/ready`;
- a **Secret** per deployment with its runtime secrets (the family's `AUTH_TOKEN` and the job's
  `secret_runtime_env`), and one per version with the JobSecrets the lifecycle saves; both labelled
  `trackside.io/backup=true` so an operator backs them up by label;
- a **Service** per version (ClusterIP, or NodePort) selecting every ready pod of that version.

Only stable APIs that 1.20 and current Kubernetes both serve (apps/v1, core/v1); the tests validate every
object with `kubernetes-validate` for current versions in strict mode.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from trackside.domain import JobSecrets
from trackside.infra.kubernetes.naming import (
    ANNOTATION_JOB_TYPE,
    ANNOTATION_TAG,
    ANNOTATION_TIMESTAMP,
    ANNOTATION_VERSION,
    CONTAINER,
    CONTAINER_PORT,
    LABEL_BACKUP,
    LABEL_DEPLOYMENT,
    LABEL_NAME,
    LABEL_PLATFORM,
    LABEL_SECRET_KIND,
    LABEL_TARGET,
    LABEL_VERSION,
    SERVICE_PORT,
    deployment_labels,
    deployment_name,
    resource_name,
    runtime_env_name,
    secrets_name,
    version_labels,
)

# Environment variables that are secrets even though the job contract passes them as env.
SECRET_ENV = ("AUTH_TOKEN",)
STARTUP_PERIOD_S = 2
LIVENESS_PERIOD_S = 10
READINESS_PERIOD_S = 2
PROBE_TIMEOUT_S = 3
TERMINATION_GRACE_S = 30


@dataclass
class JobWorkload:
    """What one deployment of a job version needs."""

    platform: str
    target: str
    name: str
    version: str
    tag: str
    image: str
    replicas: int
    env: dict[str, str]  # plain environment
    secret_env: dict[str, str]  # goes to the deployment's Secret
    timestamp: int = 0
    job_type: str = ""
    memory_min: int | None = None  # bytes
    memory_max: int | None = None
    cpu_min: float | None = None  # cores
    cpu_max: float | None = None
    live_timeout: float = 120.0  # how long the startup probe lets a replica take to answer /live
    image_pull_policy: str = "IfNotPresent"
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def deployment(self) -> str:
        return deployment_name(self.name, self.version, self.tag)

    @property
    def labels(self) -> dict[str, str]:
        return deployment_labels(self.platform, self.target, self.name, self.version, self.tag)

    @property
    def selector_labels(self) -> dict[str, str]:
        labels = self.labels
        keys = (LABEL_PLATFORM, LABEL_TARGET, LABEL_NAME, LABEL_VERSION, LABEL_DEPLOYMENT)
        return {key: labels[key] for key in keys}

    @property
    def exact(self) -> dict[str, str]:
        """Annotations with the exact values label values can't hold."""
        return {
            ANNOTATION_VERSION: self.version,
            ANNOTATION_TAG: self.tag,
            ANNOTATION_TIMESTAMP: str(self.timestamp),
            ANNOTATION_JOB_TYPE: self.job_type,
            **self.annotations,
        }


def quantity_bytes(value: int) -> str:
    return str(int(value))


def quantity_cpu(cores: float) -> str:
    return f"{max(1, round(cores * 1000))}m"


def resources(workload: JobWorkload) -> dict[str, dict[str, str]]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if workload.memory_min is not None:
        requests["memory"] = quantity_bytes(workload.memory_min)
    if workload.memory_max is not None:
        limits["memory"] = quantity_bytes(workload.memory_max)
    if workload.cpu_min is not None:
        requests["cpu"] = quantity_cpu(workload.cpu_min)
    if workload.cpu_max is not None:
        limits["cpu"] = quantity_cpu(workload.cpu_max)
    result: dict[str, dict[str, str]] = {}
    if requests:
        result["requests"] = requests
    if limits:
        result["limits"] = limits
    return result


def deployment(workload: JobWorkload) -> dict[str, Any]:
    env = [{"name": key, "value": value} for key, value in sorted(workload.env.items())]
    startup_failures = max(1, int(workload.live_timeout / STARTUP_PERIOD_S))

    def http_probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": "http", "scheme": "HTTP"},
            "periodSeconds": period,
            "timeoutSeconds": PROBE_TIMEOUT_S,
            "failureThreshold": failures,
            "successThreshold": 1,
        }

    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": workload.image,
        "imagePullPolicy": workload.image_pull_policy,
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": env,
        "envFrom": [{"secretRef": {"name": runtime_env_name(workload.name, workload.version, workload.tag)}}],
        "startupProbe": http_probe("/live", STARTUP_PERIOD_S, startup_failures),
        "livenessProbe": http_probe("/live", LIVENESS_PERIOD_S, 3),
        "readinessProbe": http_probe("/ready", READINESS_PERIOD_S, 1),
        "securityContext": {"allowPrivilegeEscalation": False},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    limits = resources(workload)
    if limits:
        container["resources"] = limits
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": workload.deployment, "labels": workload.labels, "annotations": workload.exact},
        "spec": {
            "replicas": workload.replicas,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": workload.selector_labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": workload.labels, "annotations": workload.exact},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
                    "containers": [container],
                },
            },
        },
    }


def secret(
    name: str, labels: dict[str, str], annotations: dict[str, str], values: dict[str, str], kind: str
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "labels": {**labels, LABEL_BACKUP: "true", LABEL_SECRET_KIND: kind},
            "annotations": annotations,
        },
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in sorted(values.items())},
    }


def runtime_env_secret(workload: JobWorkload) -> dict[str, Any]:
    return secret(
        runtime_env_name(workload.name, workload.version, workload.tag),
        workload.labels,
        workload.exact,
        workload.secret_env,
        "runtime-env",
    )


def job_secrets_secret(platform: str, target: str, name: str, version: str, secrets: JobSecrets) -> dict[str, Any]:
    values = {
        "git_credentials": json.dumps(secrets.git_credentials),
        "secret_build_env": json.dumps(dict(secrets.secret_build_env)),
        "secret_runtime_env": json.dumps(dict(secrets.secret_runtime_env)),
    }
    return secret(
        secrets_name(name, version),
        version_labels(platform, target, name, version),
        {ANNOTATION_VERSION: version},
        values,
        "job-secrets",
    )


def read_job_secrets(obj: dict[str, Any]) -> JobSecrets:
    data = {key: base64.b64decode(value).decode() for key, value in (obj.get("data") or {}).items()}
    git = json.loads(data.get("git_credentials") or "null")
    return JobSecrets(
        git_credentials=git if isinstance(git, dict) else None,
        secret_build_env=dict(json.loads(data.get("secret_build_env") or "{}")),
        secret_runtime_env=dict(json.loads(data.get("secret_runtime_env") or "{}")),
    )


def service(platform: str, target: str, name: str, version: str, node_port: bool = False) -> dict[str, Any]:
    labels = version_labels(platform, target, name, version)
    keys = (LABEL_PLATFORM, LABEL_TARGET, LABEL_NAME, LABEL_VERSION)
    spec: dict[str, Any] = {
        "type": "NodePort" if node_port else "ClusterIP",
        "selector": {key: labels[key] for key in keys},
        "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": resource_name(name, version),
            "labels": labels,
            "annotations": {ANNOTATION_VERSION: version},
        },
        "spec": spec,
    }


__all__ = [
    "SECRET_ENV",
    "JobWorkload",
    "deployment",
    "job_secrets_secret",
    "read_job_secrets",
    "runtime_env_secret",
    "secret",
    "service",
]
