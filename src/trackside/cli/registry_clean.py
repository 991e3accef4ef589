"""`trackside admin registry-clean`: remove job images nothing needs any more.

Like the other `admin` commands it works on the store directly, with the same settings as
`trackside up` (`--data-dir`, `--database-url`, `--config`), on the host that runs the platform.
"""

from __future__ import annotations

from typing import Annotated

import typer

from trackside.cli.server import ConfigOption, DatabaseUrlOption, DataDirOption


def registry_clean(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print what would be removed.")] = False,
    data_dir: DataDirOption = None,
    database_url: DatabaseUrlOption = None,
    config: ConfigOption = None,
) -> None:
    """Remove images of deleted jobs and old builds from the registry and the Docker engines."""
    from trackside.config import load_settings
    from trackside.infra.docker import configured_targets
    from trackside.infra.docker.engine import DockerEngine
    from trackside.infra.docker.image_cleanup import clean
    from trackside.store.database import Database

    settings = load_settings(config, data_dir=data_dir, database_url=database_url)
    keep = wanted_images(Database(settings.resolved_database_url), settings)
    engines = [DockerEngine(engine) for engine in configured_targets(settings).values()]
    report = clean(settings, engines, keep, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for image in report.removed_from_registry:
        typer.echo(f"{verb} {image}")
    for image in report.removed_from_engines:
        typer.echo(f"{verb} {image}")
    total = len(report.removed_from_registry) + len(report.removed_from_engines)
    typer.echo(f"{verb} {total} image(s), kept {len(report.kept)}", err=True)


def wanted_images(db: object, settings: object | None = None) -> set[tuple[str, str]]:
    """(job name, build tag) of every job version in the store and every deployment in progress.

    With `settings`, also sets their `platform_id` to the store's: only this platform's images are cleaned."""
    from sqlalchemy import select

    from trackside.build.artifacts import build_tag
    from trackside.config import Settings
    from trackside.domain import DeploymentStatus
    from trackside.lifecycle import job_versions
    from trackside.lifecycle.platform_identity import ensure_platform_id
    from trackside.store.database import Database
    from trackside.store.models import Deployment

    assert isinstance(db, Database)
    keep: set[tuple[str, str]] = set()
    try:
        db.migrate()
        if isinstance(settings, Settings):
            settings.platform_id = ensure_platform_id(db, settings.data_dir)
        with db.session() as session:
            for job in job_versions.list_jobs(session):
                if job.image_tag:
                    keep.add((job.name, build_tag(job.image_tag)))
            running = select(Deployment).where(Deployment.status == DeploymentStatus.IN_PROGRESS.value)
            for deployment in session.scalars(running):
                if deployment.image_name and ":" in deployment.image_name:
                    keep.add((deployment.job_name, deployment.image_name.rsplit(":", 1)[1]))
    finally:
        db.dispose()
    return keep


__all__ = ["registry_clean", "wanted_images"]
