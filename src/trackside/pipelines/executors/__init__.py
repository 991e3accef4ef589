"""Step executors: `local`, `docker` and `kubernetes`, through the same `StepExecutor` Protocol.

`build_executors` makes the ones this server offers from its settings, and the `ExecutorPolicy` that
validation uses to refuse, at submission, a pipeline asking for one that is off or unknown here.
"""

from __future__ import annotations

from typing import Any

from trackside.pipelines.executors.base import StepExecutor
from trackside.pipelines.validation import ExecutorPolicy

__all__ = ["StepExecutor", "build_executors"]


def build_executors(settings: Any) -> tuple[dict[str, StepExecutor], ExecutorPolicy]:
    from trackside.infra.docker import default_engine_present
    from trackside.infra.docker.engine import DockerEngine, EngineConfig
    from trackside.pipelines.executors.docker import DockerExecutor
    from trackside.pipelines.executors.local import LocalExecutor

    executors: dict[str, StepExecutor] = {}
    disabled: dict[str, str] = {}
    if settings.pipeline_local_executor:
        executors["local"] = LocalExecutor()
    else:
        disabled["local"] = (
            "the local executor is off on this server (an operator turns it on with pipeline_local_executor: true)"
        )
    docker_url = settings.pipeline_docker_url or settings.docker_url
    if docker_url != "off" and (settings.pipeline_docker_url or default_engine_present(settings)):
        engine = DockerEngine(EngineConfig(url=docker_url))
        executors["docker"] = DockerExecutor(
            engine,
            images=settings.pipeline_images,
            pull=settings.pipeline_docker_pull,
            network=settings.pipeline_docker_network,
        )
    else:
        disabled["docker"] = "the docker executor is off: this server has no Docker engine (docker_url)"
    kubernetes = _kubernetes_executor(settings)
    if isinstance(kubernetes, str):
        disabled["kubernetes"] = kubernetes
    else:
        executors["kubernetes"] = kubernetes
    default = settings.pipeline_executor
    policy = ExecutorPolicy(default=default, available=frozenset(executors), disabled_reasons=disabled)
    return executors, policy


def _kubernetes_executor(settings: Any) -> StepExecutor | str:
    """The kubernetes executor on the cluster found as the kubernetes target finds its own, or why not."""
    from pathlib import Path

    from trackside.errors import InvalidInput
    from trackside.identity import platform_id
    from trackside.infra.kubernetes.api import KubeApi
    from trackside.infra.kubernetes.cluster import discover
    from trackside.pipelines.executors.kubernetes import KubernetesExecutor

    kubeconfig = settings.pipeline_kubernetes_config or settings.kubernetes_config
    if kubeconfig == "off":
        return "the kubernetes executor is off on this server (kubernetes_config or pipeline_kubernetes_config: off)"
    namespace = settings.pipeline_kubernetes_namespace or settings.kubernetes_namespace
    try:
        cluster = discover(
            kubeconfig or None,
            settings.kubernetes_context or None,
            namespace or None,
            Path(settings.data_dir) / "infra" / "kubernetes",
        )
    except InvalidInput as exc:
        return f"the kubernetes executor has no cluster: {exc.message}"
    if cluster is None:
        return (
            "the kubernetes executor is off: this server found no Kubernetes cluster "
            "(no kubeconfig in kubernetes_config, KUBECONFIG or ~/.kube/config, and not running in a pod)"
        )
    return KubernetesExecutor(
        KubeApi(cluster),
        platform_id(settings),
        images=settings.pipeline_images,
        pull_policy=settings.pipeline_kubernetes_image_pull_policy,
        keep_jobs=settings.pipeline_kubernetes_keep_jobs,
    )
