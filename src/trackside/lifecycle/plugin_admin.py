"""Plugins as the lifecycle API manages them: installing and uninstalling bundles (the engine reloads
at once, each change audited) and the tree of what every active plugin brings, with how many jobs
use each job type and target. Bundles on disk are `trackside.plugins.store`'s.
"""

from __future__ import annotations

from typing import Any

import yaml

from trackside.errors import InvalidInput, Unavailable
from trackside.lifecycle import audit, job_versions
from trackside.lifecycle.audit import EventType
from trackside.plugins.engine import PluginEngine
from trackside.plugins.store import PluginStore
from trackside.store.database import Database


def bundles(engine: PluginEngine) -> PluginStore:
    """Where the installed bundles live (503 when no plugins directory is configured)."""
    store = engine.store
    if store is None:
        raise Unavailable("no plugins directory is configured")
    return store


def install(
    db: Database, engine: PluginEngine, username: str | None, data: bytes, filename: str | None, replace: bool
) -> dict[str, Any]:
    """Install (or, with `replace`, replace) a zipped bundle; its manifest's API shape."""
    if not data:
        raise InvalidInput("plugin upload: the body is empty; send the plugin's zip bundle")
    manifest = bundles(engine).install(data, filename=filename, replace=replace)
    engine.reload()
    audit.record_in(
        db,
        EventType.PLUGIN_INSTALLED,
        username,
        plugin_name=manifest.name,
        plugin_version=manifest.version,
        replace=replace,
    )
    return manifest.to_api()


def uninstall(db: Database, engine: PluginEngine, username: str | None, name: str, version: str) -> None:
    bundles(engine).uninstall(name, version)
    engine.reload()
    audit.record_in(db, EventType.PLUGIN_UNINSTALLED, username, plugin_name=name, plugin_version=version)


def uninstall_all(db: Database, engine: PluginEngine, username: str | None) -> None:
    store = bundles(engine)
    removed = store.list()
    store.uninstall_all()
    engine.reload()
    for plugin in removed:
        audit.record_in(
            db,
            EventType.PLUGIN_UNINSTALLED,
            username,
            plugin_name=plugin.manifest.name,
            plugin_version=plugin.manifest.version,
        )


def _job_counts(db: Database) -> tuple[dict[str, int], dict[str, int]]:
    """How many jobs use each `jobtype:version`, and each infrastructure target."""
    by_job_type: dict[str, int] = {}
    by_target: dict[str, int] = {}
    with db.session() as session:
        for job in job_versions.list_jobs(session):
            manifest = yaml.safe_load(job.manifest) if job.manifest else {}
            jobtype = str((manifest or {}).get("jobtype") or "").split(":", 1)[0]
            key = f"{jobtype}:{job.job_type_version}"
            by_job_type[key] = by_job_type.get(key, 0) + 1
            by_target[job.infrastructure_target or ""] = by_target.get(job.infrastructure_target or "", 0) + 1
    return by_job_type, by_target


def tree(db: Database, engine: PluginEngine) -> list[dict[str, Any]]:
    """Every active plugin (built-ins included) with its job types and targets and their job counts."""
    by_job_type, by_target = _job_counts(db)
    job_types = {p.key: names for p, names in engine.job_types_by_plugin()}
    targets = {p.key: names for p, names in engine.targets_by_plugin()}
    return [
        {
            **plugin.manifest.to_api(),
            "builtin": plugin.builtin,
            "job_types": [{"name": n, "active_jobs": by_job_type.get(n, 0)} for n in job_types.get(plugin.key, [])],
            "infrastructure_targets": [
                {"name": n, "active_jobs": by_target.get(n, 0)} for n in targets.get(plugin.key, [])
            ],
        }
        for plugin in engine.plugins
    ]
