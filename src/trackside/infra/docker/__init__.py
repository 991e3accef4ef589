"""The `docker` infrastructure targets: jobs as containers on a local or remote Docker engine.

A built-in plugin, loaded through the same `infrastructure_targets` hook as third-party ones (seed
002). It provides `docker` (the engine at `docker_url`, DOCKER_HOST or the local socket, present when
one is configured or the socket exists) and one target per entry of `docker_targets` (a remote
daemon: `DOCKER_HOST`-style URL and TLS options), all on the same code. Images are built on the
target's own engine (`docker_engine`, used by `trackside.build.targets`), pushed when a registry is
configured and pulled by an engine that lacks them. Containers carry labels that say everything
about them, so a restarted Trackside adopts what runs by listing them.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trackside.infra.base import InfrastructureTarget
from trackside.infra.docker.containers import JobContainers
from trackside.infra.docker.deployer import DockerJobDeployer
from trackside.infra.docker.engine import DEFAULT_URL, DockerEngine, EngineConfig
from trackside.infra.docker.logs import DockerLogsStreamer
from trackside.infra.docker.monitor import DockerJobMonitor
from trackside.infra.secrets import SecretFileStore

if TYPE_CHECKING:
    from trackside.config import Settings

__all__ = ["DEFAULT_TARGET", "DockerTarget", "Plugin", "build_docker_target"]

DEFAULT_TARGET = "docker"


@dataclass
class DockerTarget(InfrastructureTarget):
    docker_engine: DockerEngine | None = None


def build_docker_target(settings: Settings, name: str, config: EngineConfig) -> DockerTarget:
    engine = DockerEngine(config)
    containers = JobContainers(engine, name)
    data_dir = Path(settings.data_dir)
    secrets = SecretFileStore(data_dir / "infra" / "docker" / name / "secrets", data_dir, name)
    streamer = DockerLogsStreamer(containers)
    return DockerTarget(
        name=name,
        job_deployer=DockerJobDeployer(name, containers, secrets, settings.docker_network),
        job_monitor=DockerJobMonitor(name, containers, settings.job_live_timeout, settings.job_ready_timeout),
        logs_streamer=streamer,
        artifact_kind="image",
        close=streamer.close,
        docker_engine=engine,
    )


def default_engine_present(settings: Any) -> bool:
    url = str(getattr(settings, "docker_url", "") or "")
    if url == "off":
        return False
    if url or os.environ.get("DOCKER_HOST"):
        return True
    return Path(DEFAULT_URL.removeprefix("unix://")).exists()


def configured_targets(settings: Any) -> dict[str, EngineConfig]:
    targets: dict[str, EngineConfig] = {}
    if default_engine_present(settings):
        targets[DEFAULT_TARGET] = EngineConfig(url=str(getattr(settings, "docker_url", "") or ""))
    for name, raw in (getattr(settings, "docker_targets", None) or {}).items():
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
