"""`backup()` and `restore()`: the order of steps that keeps an archive consistent and a restore whole.

Backup: the database first (with the job list read from the very snapshot dumped), then the
plugins, the local builds, the secrets and the keys. A deploy that removed a build the snapshot
still needs (a redeploy finishing meanwhile) is caught by comparing the two; the backup then starts
again, up to `ATTEMPTS` times.

Restore: everything is extracted and checked in a staging directory beside the data dir first;
then the database is loaded (atomically); only then are the files moved into place. A refusal or
a failure before that leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from trackside.backup import database
from trackside.backup.archive import ArchiveWriter, extract, is_inside
from trackside.backup.builds import add_local_builds, missing_builds, prepare_restored
from trackside.backup.images import image_entries
from trackside.backup.keys import KeyOutcome, add_keys, restore_keys
from trackside.backup.manifest import BackupManifest, ImageEntry, JobEntry
from trackside.backup.plugins import PREFIX as PLUGINS_PREFIX
from trackside.backup.plugins import add_plugins
from trackside.backup.secrets import add_secrets
from trackside.config import Settings
from trackside.errors import InvalidInput
from trackside.infra.local.layout import LocalLayout
from trackside.store.database import Database
from trackside.store.models import Deployment, Job

log = logging.getLogger(__name__)

ATTEMPTS = 3
LOCAL_TARGET = "local"
# Files a fresh data dir may already hold: the operator's settings.
KEPT_IN_DATA_DIR = ("config.yaml",)


def _trackside_version() -> str:
    try:
        return version("trackside")
    except PackageNotFoundError:
        return ""


def _read_state(connection: Connection) -> dict[str, Any]:
    """What the backup needs from the snapshot it dumps: the schema revision and the jobs."""
    jobs = []
    for row in connection.execute(
        select(Job.name, Job.version, Job.status, Job.infrastructure_target, Job.image_tag).order_by(
            Job.name, Job.version
        )
    ):
        image = None
        if row.image_tag and (row.infrastructure_target or LOCAL_TARGET) != LOCAL_TARGET:
            image = connection.execute(
                select(Deployment.image_name)
                .where(
                    Deployment.job_name == row.name,
                    Deployment.job_version == row.version,
                    Deployment.tag == row.image_tag,
                    Deployment.image_name.is_not(None),
                )
                .order_by(Deployment.create_time.desc())
                .limit(1)
            ).scalar()
        jobs.append(
            {
                "name": row.name,
                "version": row.version,
                "status": row.status,
                "target": row.infrastructure_target or LOCAL_TARGET,
                "tag": row.image_tag or "",
                "image": image or "",
            }
        )
    return {"revision": database.schema_revision(connection), "jobs": jobs}


def backup(settings: Settings, destination: Path, *, force: bool = False, include_keys: bool = False) -> BackupManifest:
    """Write the archive of the platform configured by `settings` to `destination`; its manifest."""
    destination = Path(destination).absolute()
    data_dir = settings.data_dir.absolute()
    plugins_dir = settings.resolved_plugins_dir.absolute()
    if not data_dir.is_dir():
        raise InvalidInput(f"data dir {data_dir} does not exist: nothing to back up")
    kind = database.kind_of(settings.resolved_database_url)
    db = Database(settings.resolved_database_url)
    try:
        for attempt in range(1, ATTEMPTS + 1):
            manifest = _write(settings, db, kind, destination, data_dir, plugins_dir, force, include_keys)
            if manifest is not None:
                return manifest
            log.warning("a deploy changed the builds during the backup; starting again (attempt %s)", attempt + 1)
    finally:
        db.dispose()
    raise InvalidInput(
        f"deploys kept replacing builds during the backup ({ATTEMPTS} attempts): run it again when they are done"
    )


def _write(
    settings: Settings,
    db: Database,
    kind: database.DatabaseKind,
    destination: Path,
    data_dir: Path,
    plugins_dir: Path,
    force: bool,
    include_keys: bool,
) -> BackupManifest | None:
    writer = ArchiveWriter(destination, force=force, forbidden=[data_dir, plugins_dir])
    try:
        with tempfile.TemporaryDirectory(prefix=".trackside-backup-", dir=destination.parent) as tmp:
            dump_file = Path(tmp) / "database"
            state = database.dump(db, dump_file, _read_state)
            writer.add_file(database.MEMBERS[kind], dump_file)
        add_plugins(writer, plugins_dir)
        kept = add_local_builds(writer, data_dir)
        add_secrets(writer, data_dir)
        if include_keys:
            add_keys(writer, settings)
        jobs = state["jobs"]
        wanted = {(j["name"], j["version"], j["tag"]) for j in jobs if j["target"] == LOCAL_TARGET and j["tag"]}
        if missing_builds(wanted, kept):
            writer.abort()
            return None
        manifest = BackupManifest(
            trackside_version=_trackside_version(),
            data_dir=str(data_dir),
            plugins_dir=str(plugins_dir),
            database=kind,
            schema_revision=state["revision"],
            includes_keys=include_keys,
            jobs=[JobEntry(**{k: j[k] for k in ("name", "version", "status", "target", "tag")}) for j in jobs],
            images=image_entries(settings, [j for j in jobs if j["target"] != LOCAL_TARGET]),
        )
        writer.commit(manifest)
        return manifest
    except BaseException:
        writer.abort()
        raise


# --- restore ------------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    manifest: BackupManifest
    keys: KeyOutcome
    images: list[ImageEntry] = field(default_factory=list)


def _data_dir_content(data_dir: Path) -> list[str]:
    if not data_dir.is_dir():
        return []
    return sorted(p.name for p in data_dir.iterdir() if p.name not in KEPT_IN_DATA_DIR)


def _check_not_running(data_dir: Path) -> None:
    """Refuse while a platform runs on the data dir (it holds the local target's owner lock)."""
    lock = LocalLayout(data_dir).lock_file
    if not lock.is_file():
        return
    with open(lock, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidInput(f"a platform is running on {data_dir}: stop it before restoring") from None
        fcntl.flock(handle, fcntl.LOCK_UN)


def check_target(settings: Settings, *, force: bool) -> None:
    """Refuse a target that is not fresh (unless `force`), in one line that says what is there."""
    data_dir = settings.data_dir.absolute()
    _check_not_running(data_dir)
    if force:
        return
    url = settings.resolved_database_url
    content = _data_dir_content(data_dir)
    tables = database.tables(url)
    plugins_dir = settings.resolved_plugins_dir.absolute()
    plugins = [] if is_inside(plugins_dir, data_dir) or not plugins_dir.is_dir() else list(plugins_dir.iterdir())
    if content or tables or plugins:
        what = []
        if content:
            what.append(f"data dir {data_dir} holds {', '.join(content[:4])}{' ...' if len(content) > 4 else ''}")
        if tables and not (database.kind_of(url) == "sqlite" and is_inside(database.sqlite_path(url), data_dir)):
            what.append(f"the database has {len(tables)} tables")
        if plugins:
            what.append(f"plugins dir {plugins_dir} is not empty")
        raise InvalidInput(
            f"restore needs a fresh data dir and an empty database, but {'; '.join(what)}: "
            "choose another, or pass --force to replace what is there"
        )


def restore(settings: Settings, archive: Path, *, force: bool = False) -> RestoreReport:
    """Bring the platform configured by `settings` back to the archive's state."""
    archive = Path(archive).absolute()
    data_dir = settings.data_dir.absolute()
    plugins_dir = settings.resolved_plugins_dir.absolute()
    url = settings.resolved_database_url
    if not archive.is_file():
        raise InvalidInput(f"{archive}: no such file")
    if is_inside(archive, data_dir) and force:
        raise InvalidInput(f"{archive} is inside the data dir {data_dir}, which --force would replace: move it first")
    check_target(settings, force=force)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    existed = data_dir.exists()
    staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restore-", dir=data_dir.parent))
    try:
        manifest = extract(archive, staging)
        if database.MEMBERS[manifest.database] not in manifest.files:
            raise InvalidInput(f"{archive}: damaged: it holds no database")
        database.check_revision_known(manifest.schema_revision)
        database.check_can_load(url, manifest.database)
        prepare_restored(staging / "data", manifest.data_dir, data_dir)
        old = staging / ".replaced"
        old.mkdir()
        if force:
            _move_aside(data_dir, plugins_dir, url, old)
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            dump_file = staging.joinpath(*database.MEMBERS[manifest.database].split("/"))
            database.load(url, dump_file, manifest.database, replace=force)
        except BaseException:
            _put_back(old, data_dir, plugins_dir)
            raise
        _move_into_place(staging, data_dir, plugins_dir)
        keys = restore_keys(staging, settings)
        return RestoreReport(manifest=manifest, keys=keys, images=list(manifest.images))
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):
                data_dir.rmdir()  # made here, left empty: leave nothing behind
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_aside(data_dir: Path, plugins_dir: Path, url: str, old: Path) -> None:
    """--force: what the target holds goes into `old` (put back if loading the database fails)."""
    if data_dir.is_dir():
        for entry in data_dir.iterdir():
            if entry.name in KEPT_IN_DATA_DIR:
                continue
            if database.kind_of(url) == "sqlite" and entry.name.startswith(database.sqlite_path(url).name):
                continue  # the database file is replaced by loading, atomically
            (old / "data").mkdir(exist_ok=True)
            entry.rename(old / "data" / entry.name)
    if plugins_dir.is_dir() and not is_inside(plugins_dir, data_dir):
        plugins_dir.rename(old / "plugins")


def _put_back(old: Path, data_dir: Path, plugins_dir: Path) -> None:
    if (old / "data").is_dir():
        for entry in (old / "data").iterdir():
            with contextlib.suppress(OSError):
                entry.rename(data_dir / entry.name)
    if (old / "plugins").is_dir():
        with contextlib.suppress(OSError):
            (old / "plugins").rename(plugins_dir)


def _move_into_place(staging: Path, data_dir: Path, plugins_dir: Path) -> None:
    staged_data = staging / "data"
    if staged_data.is_dir():
        for entry in staged_data.iterdir():
            _rename_merging(entry, data_dir / entry.name)
    staged_plugins = staging / PLUGINS_PREFIX
    if staged_plugins.is_dir():
        plugins_dir.parent.mkdir(parents=True, exist_ok=True)
        _rename_merging(staged_plugins, plugins_dir)


def _rename_merging(source: Path, target: Path) -> None:
    """Rename `source` to `target`; where a directory is there already (plugins/ in data/), merge into it."""
    if not target.exists():
        source.rename(target)
        return
    if target.is_dir() and source.is_dir():
        for entry in source.iterdir():
            _rename_merging(entry, target / entry.name)
        return
    target.unlink()
    source.rename(target)
