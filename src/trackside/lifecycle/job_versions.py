"""The job registry: job versions and families in the store, and their API shape.

Version aliases (`latest`, `1.x`) resolve here, with Racetrack's rules: aliases only pick among
jobs that have started (running, error or lost); an exact version matches any status.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import yaml
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from trackside.domain import JobDto, JobFamilyDto, JobStatus
from trackside.errors import NotFound
from trackside.manifest.versions import is_version_pattern, resolve_job_version
from trackside.store.base import utcnow
from trackside.store.models import Job, JobFamily, TrashJob

ALIAS_STATUSES = {JobStatus.RUNNING.value, JobStatus.ERROR.value, JobStatus.LOST.value}


def timestamp(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; they were stored as UTC
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp())


# libyaml's loader when present: listing 10,000 jobs parses 10,000 manifests.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=32_768)
def parse_stored_manifest(text: str) -> dict[str, Any] | None:
    """A stored manifest as a dict; cached, since a job's manifest rarely changes. Don't mutate it."""
    loaded = yaml.load(text, Loader=_YamlLoader)  # noqa: S506 - CSafeLoader/SafeLoader only
    return loaded if isinstance(loaded, dict) else None


def job_to_dto(job: Job, pub_url_base: str) -> JobDto:
    manifest = parse_stored_manifest(job.manifest) if job.manifest else None
    return JobDto(
        id=job.id,
        name=job.name,
        version=job.version,
        status=job.status,
        create_time=timestamp(job.create_time) or 0,
        update_time=timestamp(job.update_time) or 0,
        manifest=manifest,
        manifest_yaml=job.manifest,
        internal_name=job.internal_name,
        pub_url=f"{pub_url_base}/job/{job.name}/{job.version}",
        error=job.error,
        notice=job.notice,
        image_tag=job.image_tag,
        deployed_by=job.deployed_by,
        last_call_time=timestamp(job.last_call_time),
        infrastructure_target=job.infrastructure_target,
        replica_internal_names=list(job.replica_internal_names or []),
        job_type_version=job.job_type_version,
        infrastructure_stats=dict(job.infrastructure_stats or {}),
        source_version=job.source_version,
    )


def list_jobs(session: Session) -> list[Job]:
    return list(session.scalars(select(Job).order_by(Job.name, Job.create_time)))


def find_job(session: Session, name: str, version: str) -> Job | None:
    """The job `name` at `version`, which may be an alias."""
    if not is_version_pattern(version):
        return session.scalars(select(Job).where(Job.name == name, Job.version == version)).first()
    candidates = {
        job.version: job for job in session.scalars(select(Job).where(Job.name == name, Job.status.in_(ALIAS_STATUSES)))
    }
    resolved = resolve_job_version(version, candidates)
    return candidates.get(resolved) if resolved else None


def get_job(session: Session, name: str, version: str) -> Job:
    job = find_job(session, name, version)
    if job is None:
        raise NotFound(f"job {name} version {version} not found")
    return job


def get_or_create_family(session: Session, name: str) -> JobFamily:
    family = session.scalars(select(JobFamily).where(JobFamily.name == name)).first()
    if family is None:
        family = JobFamily(name=name)
        session.add(family)
        session.flush()
    return family


def family_dto(family: JobFamily) -> JobFamilyDto:
    return JobFamilyDto(name=family.name, id=family.id)


def list_families(session: Session) -> list[JobFamily]:
    return list(session.scalars(select(JobFamily).order_by(JobFamily.name)))


def is_in_trash(session: Session, name: str, version: str) -> bool:
    query = select(TrashJob.id).where(TrashJob.name == name, TrashJob.version == version)
    return session.scalars(query).first() is not None


def move_to_trash(session: Session, job: Job, deleted_by: str | None) -> None:
    now = utcnow()
    created = job.create_time if job.create_time.tzinfo else job.create_time.replace(tzinfo=UTC)
    session.add(
        TrashJob(
            id=job.id,
            name=job.name,
            version=job.version,
            status=job.status,
            create_time=job.create_time,
            update_time=job.update_time,
            delete_time=now,
            manifest=job.manifest,
            image_tag=job.image_tag,
            deployed_by=job.deployed_by,
            deleted_by=deleted_by,
            infrastructure_target=job.infrastructure_target,
            job_type_version=job.job_type_version,
            age_days=(now - created).days,
        )
    )
    session.execute(
        delete(TrashJob).where(TrashJob.id != job.id, TrashJob.name == job.name, TrashJob.version == job.version)
    )
    session.delete(job)


def update_job(job: Job, **fields: Any) -> bool:
    """Set fields that differ; returns whether anything changed (so idle syncs write nothing)."""
    changed = False
    for key, value in fields.items():
        if getattr(job, key) != value:
            setattr(job, key, value)
            changed = True
    if changed:
        job.update_time = utcnow()
    return changed
