"""Step executors: `local`, `docker` (and `kubernetes` later, through the same `StepExecutor` Protocol).

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
    disabled: dict[str, str] = {
        "kubernetes": "the kubernetes executor is not available on this server yet",
    }
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
    default = settings.pipeline_executor
    policy = ExecutorPolicy(default=default, available=frozenset(executors), disabled_reasons=disabled)
    return executors, policy
