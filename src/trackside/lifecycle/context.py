"""Everything the lifecycle's parts share in one process: settings, store, plugins, services."""

from __future__ import annotations

from dataclasses import dataclass

from trackside.config import Settings
from trackside.infra.base import InfrastructureTarget
from trackside.lifecycle.deployer import DeployService
from trackside.lifecycle.job_listing import JobListing
from trackside.lifecycle.recovery import recover_interrupted_deploys
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
        plugins = PluginEngine(settings, component=component)
        return cls(settings, db, plugins, DeployService(settings, db, plugins), JobListing(settings.pub_url))

    def recover_interrupted_deploys(self) -> None:
        """At the lifecycle's start: settle the deploys its previous run left in progress."""
        recover_interrupted_deploys(self.db, self.plugins, self.deployer.artifacts)

    def target(self, name: str | None) -> InfrastructureTarget | None:
        return self.plugins.infrastructure_targets().get(name or "")

    def close(self) -> None:
        self.deployer.close()
        self.plugins.close()
        self.db.dispose()
