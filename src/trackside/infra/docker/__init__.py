"""The `docker` infrastructure targets: jobs as containers on a local or remote Docker engine.

A built-in plugin, loaded through the same `infrastructure_targets` hook as third-party ones (seed
002). It provides `docker` (the engine at `docker_url`, DOCKER_HOST or the local socket, present when
one is configured or the socket exists) and one target per entry of `docker_targets` (a remote
daemon: `DOCKER_HOST`-style URL and TLS options), all on the same code. Each declares its image
builder (`InfrastructureTarget.image_builder`): images are built on the target's own engine, pushed
when a registry is configured and pulled by an engine that lacks them. Containers carry labels that say
everything about them, the platform's identity included, so a restarted Trackside adopts what runs by
listing them and never sees another platform's containers on a shared engine.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackside.identity import platform_id
from trackside.infra.base import InfrastructureTarget
from trackside.infra.docker.containers import JobContainers
from trackside.infra.docker.deployer import DockerJobDeployer
from trackside.infra.docker.engine import DEFAULT_URL, DockerEngine, EngineConfig
from trackside.infra.docker.images import DockerImageBuilder
from trackside.infra.docker.logs import DockerLogsStreamer
from trackside.infra.docker.monitor import DockerJobMonitor
from trackside.infra.secrets import SecretFileStore

if TYPE_CHECKING:
    from trackside.config import Settings

__all__ = ["DEFAULT_TARGET", "DockerTarget", "Plugin", "build_docker_target"]

DEFAULT_TARGET = "docker"


@dataclass
class DockerTarget(InfrastructureTarget):
    docker_engine: DockerEngine | None = None  # the engine its containers run on (and its images are built on)


def build_docker_target(settings: Settings, name: str, config: EngineConfig) -> DockerTarget:
    engine = DockerEngine(config)
    platform = platform_id(settings)
    containers = JobContainers(engine, name, platform)
    data_dir = Path(settings.data_dir)
    secrets = SecretFileStore(data_dir / "infra" / "docker" / name / "secrets", data_dir, name)
    streamer = DockerLogsStreamer(containers)
    return DockerTarget(
        name=name,
        job_deployer=DockerJobDeployer(name, containers, secrets, settings.docker_network),
        job_monitor=DockerJobMonitor(name, containers, settings.job_live_timeout, settings.job_ready_timeout),
        logs_streamer=streamer,
        artifact_kind="image",
        image_builder=DockerImageBuilder(engine, platform),
        close=streamer.close,
        docker_engine=engine,
    )


def default_engine_present(settings: Settings) -> bool:
    url = settings.docker_url
    if url == "off":
        return False
    if url or os.environ.get("DOCKER_HOST"):
        return True
    return Path(DEFAULT_URL.removeprefix("unix://")).exists()


def configured_targets(settings: Settings) -> dict[str, EngineConfig]:
    targets: dict[str, EngineConfig] = {}
    if default_engine_present(settings):
        targets[DEFAULT_TARGET] = EngineConfig(url=settings.docker_url)
    for name, raw in settings.docker_targets.items():
        targets[str(name)] = EngineConfig.from_dict(str(name), raw)
    return targets


class Plugin:
    plugin_manifest: Any = {"name": "docker-infrastructure", "version": "1.0.0", "category": "infrastructure"}
    settings: Settings  # set by the PluginEngine before any hook is called

    def __init__(self) -> None:
        self._targets: dict[str, InfrastructureTarget] | None = None
        self._lock = threading.Lock()

    def infrastructure_targets(self) -> dict[str, InfrastructureTarget]:
        with self._lock:
            if self._targets is None:
                self._targets = {
                    name: build_docker_target(self.settings, name, config)
                    for name, config in configured_targets(self.settings).items()
                }
            return dict(self._targets)
