"""The `local` infrastructure target: jobs run as local processes on loopback ports.

A built-in plugin, loaded through the same `infrastructure_targets` hook as third-party ones (docs/architecture.md,
"The plugin interface"). Jobs outlive the platform process: state files under the data dir let the next start adopt
running replicas and start again those stopped by a shutdown.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from trackside.build.artifacts import ArtifactStore
from trackside.infra.base import InfrastructureTarget
from trackside.infra.local.confinement import Confinement
from trackside.infra.local.deployer import TARGET_NAME, LocalJobDeployer
from trackside.infra.local.logs import LocalLogsStreamer
from trackside.infra.local.monitor import LocalJobMonitor
from trackside.infra.local.replicas import ReplicaManager

if TYPE_CHECKING:
    from trackside.config import Settings

__all__ = ["Plugin", "build_local_target"]


def build_local_target(settings: Settings, **manager_options: Any) -> InfrastructureTarget:
    """A local target over `settings.data_dir`; `manager_options` tune the watcher (tests, benchmarks)."""
    manager = ReplicaManager(settings.data_dir, confinement=Confinement.from_settings(settings), **manager_options)
    return InfrastructureTarget(
        name=TARGET_NAME,
        job_deployer=LocalJobDeployer(manager, ArtifactStore(settings.data_dir)),
        job_monitor=LocalJobMonitor(manager, settings.job_live_timeout, settings.job_ready_timeout),
        logs_streamer=LocalLogsStreamer(manager.layout, manager.replica_indices),
        artifact_kind="local",
        close=manager.close,
    )


class Plugin:
    plugin_manifest: Any = {"name": "local-infrastructure", "version": "1.0.0", "category": "infrastructure"}
    settings: Settings  # set by the PluginEngine before any hook is called

    def __init__(self) -> None:
        self._target: InfrastructureTarget | None = None
        self._lock = threading.Lock()

    def infrastructure_targets(self) -> dict[str, InfrastructureTarget]:
        # One target per plugin instance: it owns processes, state and a watcher thread.
        with self._lock:
            if self._target is None:
                self._target = build_local_target(self.settings)
            return {TARGET_NAME: self._target}
