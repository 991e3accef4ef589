"""Everything the lifecycle's parts share in one process: settings, store, plugins, services."""

from __future__ import annotations

from dataclasses import dataclass

from trackside.config import Settings
from trackside.infra.base import InfrastructureTarget
from trackside.lifecycle.deployer import DeployService
from trackside.lifecycle.job_listing import JobListing
from trackside.lifecycle.platform_identity import ensure_platform_id
from trackside.plugins.engine import PluginEngine
from trackside.store.database import Database


@dataclass
class LifecycleContext:
    settings: Settings
    db: Database
    plugins: PluginEngine
    deployer: DeployService
    job_listing: JobListing

    @classmethod
    def create(cls, settings: Settings, component: str = "lifecycle") -> LifecycleContext:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        db.migrate()
        # Before any target exists: they label what they start with it.
        settings.platform_id = ensure_platform_id(db, settings.data_dir)
        plugins = PluginEngine(settings, component=component)
        return cls(settings, db, plugins, DeployService(settings, db, plugins), JobListing(settings.pub_url))

    def start_deploy_worker(self) -> None:
        """In a lifecycle process: settle the deploys stopped workers left in progress, then keep this
        worker's deployment leases and take over those other workers leave (lifecycle/pipeline.py)."""
        self.deployer.start()

    def target(self, name: str | None) -> InfrastructureTarget | None:
        return self.plugins.infrastructure_targets().get(name or "")

    def close(self) -> None:
        self.deployer.close()
        self.plugins.close()
        self.db.dispose()
