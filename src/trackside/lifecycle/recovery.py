"""Settling what a crash or stop of the lifecycle left half-made, when it starts again.

Deploys run in the lifecycle's worker threads, so a deployment still in progress when the
lifecycle starts was cut off. Each is marked failed. The first deploy of a version is then rolled
back as a failed deploy is (its replicas removed, its job record and build dropped), so deploying it
again needs no `--force`. A redeploy has already replaced the version's earlier replicas in place:
that version is kept and marked as errored, with the reason.

This runs in the lifecycle alone (never in a separate supervisor, whose restart must not touch
deploys that a running lifecycle is still doing). It assumes one lifecycle process per store.
"""

from __future__ import annotations

import logging

from trackside.build.artifacts import ArtifactStore
from trackside.domain import JobStatus
from trackside.lifecycle import audit, registry
from trackside.lifecycle.audit import EventType
from trackside.lifecycle.deployments import INTERRUPTED_ERROR, fail_interrupted
from trackside.plugins.engine import PluginEngine
from trackside.store.database import Database
from trackside.store.models import Deployment

log = logging.getLogger(__name__)


def recover_interrupted_deploys(db: Database, plugins: PluginEngine, artifacts: ArtifactStore) -> None:
    interrupted = fail_interrupted(db)
    if interrupted:
        log.warning("marked %d interrupted deployment(s) as failed", len(interrupted))
    for deployment in interrupted:
        try:
            _settle(db, plugins, artifacts, deployment)
        except Exception:  # one job's leftovers must not keep the lifecycle from starting
            log.exception("cleaning up after the interrupted deployment %s", deployment.id)
    # A version left starting without a deployment record to explain it: say why it is not running.
    with db.session() as session:
        for job in registry.list_jobs(session):
            if job.status == JobStatus.STARTING.value:
                registry.update_job(job, status=JobStatus.ERROR.value, error=INTERRUPTED_ERROR)


def _settle(db: Database, plugins: PluginEngine, artifacts: ArtifactStore, deployment: Deployment) -> None:
    name, version = deployment.job_name, deployment.job_version
    with db.session() as session:
        job = registry.find_job(session, name, version)
        if job is None or job.status != JobStatus.STARTING.value:
            return  # nothing was recorded yet, or the version kept serving (a gap-free redeploy)
        if job.create_time < deployment.create_time:  # a redeploy: the version existed before it
            registry.update_job(job, status=JobStatus.ERROR.value, error=INTERRUPTED_ERROR)
            return
        target_name, tag = job.infrastructure_target, job.image_tag
    target = plugins.infrastructure_targets().get(target_name or "")
    if target is not None and target.job_deployer is not None:
        target.job_deployer.delete_job(name, version)
    with db.session() as session:
        job = registry.find_job(session, name, version)
        if job is not None:
            session.delete(job)
    if tag:
        artifacts.remove(name, version, tag)
    audit.record_in(
        db,
        EventType.DEPLOYMENT_FAILED,
        deployment.deployed_by,
        job_name=name,
        job_version=version,
        deployment_id=deployment.id,
    )
    log.warning("rolled back the interrupted first deploy of %s %s", name, version)
