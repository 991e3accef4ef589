"""The `kubernetes` infrastructure targets: jobs as Deployments on a Kubernetes cluster.

A built-in plugin, loaded through the same `infrastructure_targets` hook as third-party ones (seed
002). It provides `kubernetes` (the cluster of the kubeconfig found as kubectl finds it, or the pod's
service account; present whenever one is found, as `docker` is whenever an engine answers) and one
target per entry of `kubernetes_targets` (a kubeconfig path or context, a namespace, and optionally a
remote gateway: Racetrack's "remote gateway mode", a gateway inside the cluster and the lifecycle
outside). Images come from the image builder the docker target uses (this host's engine, pushed to
`docker_registry` for the cluster's nodes to pull). Objects carry the platform's identity and the
target's name as labels, so a restarted Trackside adopts what runs by listing them (docs/kubernetes.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackside.errors import InvalidInput
from trackside.identity import platform_id
from trackside.infra.base import InfrastructureTarget
from trackside.infra.kubernetes.api import KubeApi
from trackside.infra.kubernetes.cluster import ClusterConfig, discover
from trackside.infra.kubernetes.deployer import KubernetesJobDeployer
from trackside.infra.kubernetes.logs import KubernetesLogsStreamer
from trackside.infra.kubernetes.monitor import KubernetesJobMonitor
from trackside.infra.kubernetes.workloads import JobWorkloads

if TYPE_CHECKING:
    from trackside.config import Settings

__all__ = ["DEFAULT_TARGET", "KubernetesTarget", "Plugin", "TargetConfig", "build_kubernetes_target"]

DEFAULT_TARGET = "kubernetes"
JOB_ADDRESSES = ("pod", "service", "nodeport")
PULL_POLICIES = ("IfNotPresent", "Always", "Never")
TARGET_KEYS = {
    "kubeconfig",
    "context",
    "namespace",
    "job_address",
    "pub_url",
    "image_pull_policy",
    "remote_gateway_url",
    "remote_gateway_token",
}


@dataclass
class TargetConfig:
    """One Kubernetes target's settings (the `kubernetes_*` settings, or an entry of `kubernetes_targets`)."""

    kubeconfig: str = ""
    context: str = ""
    namespace: str = ""
    job_address: str = "pod"
    pub_url: str = ""
    image_pull_policy: str = "IfNotPresent"
    remote_gateway_url: str | None = None
    remote_gateway_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, raw: dict[str, Any]) -> TargetConfig:
        unknown = set(raw) - TARGET_KEYS
        if unknown:
            raise InvalidInput(
                f"kubernetes_targets.{name}: unknown keys {', '.join(sorted(unknown))} "
                f"(allowed: {', '.join(sorted(TARGET_KEYS))})"
            )
        config = cls(**{key: raw[key] for key in TARGET_KEYS if raw.get(key) is not None})
        config.check(f"kubernetes_targets.{name}")
        return config

    def check(self, where: str) -> None:
        if self.job_address not in JOB_ADDRESSES:
            raise InvalidInput(
                f"{where}.job_address must be one of {', '.join(JOB_ADDRESSES)}, got {self.job_address!r}"
            )
        if self.image_pull_policy not in PULL_POLICIES:
            raise InvalidInput(
                f"{where}.image_pull_policy must be one of {', '.join(PULL_POLICIES)}, got {self.image_pull_policy!r}"
            )


@dataclass
class KubernetesTarget(InfrastructureTarget):
    cluster: ClusterConfig | None = None  # the API server, user and namespace it deploys to
    workloads: JobWorkloads | None = None


def build_kubernetes_target(
    settings: Settings, name: str, config: TargetConfig, cluster: ClusterConfig
) -> KubernetesTarget:
    api = KubeApi(cluster)
    workloads = JobWorkloads(api, name, platform_id(settings))
    streamer = KubernetesLogsStreamer(workloads)

    def close() -> None:
        workloads.watcher.stop()
        streamer.close()
        api.close()

    return KubernetesTarget(
        name=name,
        job_deployer=KubernetesJobDeployer(
            name,
            workloads,
            job_address=config.job_address,
            pub_url=config.pub_url,
            image_pull_policy=config.image_pull_policy,
            live_timeout=settings.job_live_timeout,
        ),
        job_monitor=KubernetesJobMonitor(
            name, workloads, settings.job_live_timeout, settings.job_ready_timeout, job_address=config.job_address
        ),
        logs_streamer=streamer,
        remote_gateway_url=config.remote_gateway_url,
        remote_gateway_token=config.remote_gateway_token,
        artifact_kind="image",
        image_builder=None,  # this host's Docker engine builds (and pushes to docker_registry)
        close=close,
        cluster=cluster,
        workloads=workloads,
    )


def default_config(settings: Settings) -> TargetConfig:
    config = TargetConfig(
        kubeconfig=settings.kubernetes_config,
        context=settings.kubernetes_context,
        namespace=settings.kubernetes_namespace,
        job_address=settings.kubernetes_job_address,
        pub_url=settings.kubernetes_pub_url,
        image_pull_policy=settings.kubernetes_image_pull_policy,
    )
    config.check("kubernetes")
    return config


def configured_targets(settings: Settings) -> dict[str, tuple[TargetConfig, ClusterConfig]]:
    """The targets with a cluster found: `kubernetes` (unless "off") and every `kubernetes_targets` entry."""
    secrets_dir = Path(settings.data_dir) / "infra" / "kubernetes"
    targets: dict[str, tuple[TargetConfig, ClusterConfig]] = {}
    if settings.kubernetes_config != "off":
        config = default_config(settings)
        cluster = discover(config.kubeconfig or None, config.context or None, config.namespace or None, secrets_dir)
        if cluster is not None:
            targets[DEFAULT_TARGET] = (config, cluster)
    for name, raw in settings.kubernetes_targets.items():
        config = TargetConfig.from_dict(str(name), dict(raw or {}))
        cluster = discover(config.kubeconfig or None, config.context or None, config.namespace or None, secrets_dir)
        if cluster is None:
            raise InvalidInput(f"kubernetes_targets.{name}: no kubeconfig found and not running in a cluster")
        targets[str(name)] = (config, cluster)
    return targets


class Plugin:
    plugin_manifest: Any = {"name": "kubernetes-infrastructure", "version": "1.0.0", "category": "infrastructure"}
    settings: Settings  # set by the PluginEngine before any hook is called

    def __init__(self) -> None:
        self._targets: dict[str, InfrastructureTarget] | None = None
        self._lock = threading.Lock()

    def infrastructure_targets(self) -> dict[str, InfrastructureTarget]:
        with self._lock:
            if self._targets is None:
                self._targets = {
                    name: build_kubernetes_target(self.settings, name, config, cluster)
                    for name, (config, cluster) in configured_targets(self.settings).items()
                }
            return dict(self._targets)
