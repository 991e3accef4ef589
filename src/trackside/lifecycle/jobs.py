"""Job versions as the lifecycle API hands them out and edits them: reading one, listing what the
caller may see, editing a stored manifest and reading build logs. Each function opens its own
transaction, checks the caller and audits what it changes; the records are `job_versions`'.
"""

from __future__ import annotations

from typing import Any

from trackside.auth.permissions import Resource
from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.domain import JobDto
from trackside.errors import InvalidInput, NotFound
from trackside.lifecycle import audit, job_versions
from trackside.lifecycle.access import Grants, require_job
from trackside.lifecycle.audit import EventType
from trackside.lifecycle.deployments import deployed_version, latest_deployment
from trackside.lifecycle.job_listing import JobListing
from trackside.manifest.load import manifest_from_yaml, manifest_to_yaml
from trackside.manifest.versions import is_version_pattern
from trackside.store.database import Database


def readable(
    db: Database, caller: Caller, name: str, version: str, pub_url: str, scope: Scope = Scope.READ_JOB
) -> JobDto:
    """The job (a version alias resolved), if `caller` has `scope` on it: 404 for an unknown job, else 403."""
    with db.session() as session:
        job = job_versions.get_job(session, name, version)
        require_job(session, caller, scope, job)
        return job_versions.job_to_dto(job, pub_url)


def visible_json(db: Database, listing: JobListing, caller: Caller) -> str:
    """`GET /job`'s JSON body: the jobs the caller may read."""
    with db.session() as session:
        grants = Grants.of(session, caller)
        return listing.json(
            session, lambda family_id, job_id: grants.allows(Scope.READ_JOB, Resource(family_id, job_id))
        )


def visible_families(db: Database, caller: Caller) -> list[dict[str, str]]:
    """The families of the jobs the caller may read."""
    with db.session() as session:
        visible = {job.family_id for job in Grants.of(session, caller).readable(job_versions.list_jobs(session))}
        return [{"name": f.name, "id": f.id} for f in job_versions.list_families(session) if f.id in visible]


def edit_manifest(db: Database, caller: Caller, job: JobDto, manifest_yaml: str, pub_url: str) -> dict[str, Any]:
    """Store a new manifest for `job` (its name and version are immutable), audited; the job's API shape.
    It takes effect on the next redeploy (Racetrack's semantics)."""
    manifest = manifest_from_yaml(manifest_yaml, source="manifest_yaml")
    if (manifest.name, manifest.version) != (job.name, job.version):
        raise InvalidInput(
            f"manifest_yaml: name and version are immutable (job {job.name} {job.version}, "
            f"got {manifest.name} {manifest.version})"
        )
    with db.session() as session:
        row = job_versions.get_job(session, job.name, job.version)
        job_versions.update_job(row, manifest=manifest_to_yaml(manifest))
        audit.record(session, EventType.MANIFEST_UPDATED, caller.username, job_name=job.name, job_version=job.version)
        return job_versions.job_to_dto(row, pub_url).to_api()


def build_logs(db: Database, caller: Caller, name: str, version: str) -> str:
    """The build logs of the version's latest deployment. A failed first deploy leaves no job: its logs
    are for those who may deploy a new family at all (and internal callers)."""
    with db.session() as session:
        job = job_versions.find_job(session, name, version)
        if job is not None:
            require_job(session, caller, Scope.READ_JOB, job)
        elif not Grants.of(session, caller).allows(Scope.DEPLOY_NEW_FAMILY, Resource()) and not caller.is_internal:
            raise NotFound(f"no deployment of job {name} version {version} found")
        exact = job.version if job is not None else version
        if job is None and is_version_pattern(version):  # `racetrack build-logs NAME` after a failed first deploy
            exact = deployed_version(session, name, version) or version
        deployment = latest_deployment(session, name, exact)
        if deployment is None:
            raise NotFound(f"no deployment of job {name} version {version} found")
        return deployment.build_logs or ""
