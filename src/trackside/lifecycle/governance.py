"""What the deploy service does for governance around a deploy or delete: grants, public
endpoint requests, audit events, and the family token jobs get as AUTH_TOKEN.

Kept out of `deployer.py` so that module calls three functions and knows nothing about auth.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy import select

from trackside.auth.service import AuthService
from trackside.config import Settings
from trackside.lifecycle import audit
from trackside.lifecycle.access import grant_deployer
from trackside.lifecycle.audit import EventType
from trackside.manifest.model import Manifest
from trackside.store.auth_models import PublicEndpointRequest
from trackside.store.database import Database
from trackside.store.models import Deployment, Job

log = logging.getLogger(__name__)

_services: dict[tuple[Path, str], AuthService] = {}
_lock = threading.Lock()


def auth_service(settings: Settings, db: Database) -> AuthService:
    """One AuthService per (data dir, database) in this process."""
    key = (settings.data_dir, db.url)
    with _lock:
        service = _services.get(key)
        if service is None or service.db is not db:
            service = _services[key] = AuthService.from_settings(settings, db)
        return service


def family_token(settings: Settings, db: Database, family_name: str) -> str:
    return auth_service(settings, db).family_token(family_name)


def after_deploy(
    db: Database, deployment_id: str, manifest: Manifest, username: str | None, first_deploy: bool
) -> None:
    """Post-deploy: the deployer's grants on a first deploy, public endpoint requests, the audit event."""
    with db.session() as session:
        job = session.scalars(select(Job).where(Job.name == manifest.name, Job.version == manifest.version)).first()
        deployment = session.get(Deployment, deployment_id)
        kind = deployment.kind if deployment is not None else "deploy"
        if job is None:
            return
        if first_deploy:
            grant_deployer(session, username, job)
        existing = {
            r.endpoint
            for r in session.scalars(select(PublicEndpointRequest).where(PublicEndpointRequest.job_id == job.id))
        }
        for endpoint in manifest.public_endpoints or []:
            if endpoint not in existing:
                session.add(PublicEndpointRequest(job_id=job.id, endpoint=endpoint, active=False))
        event = EventType.JOB_REDEPLOYED if kind == "redeploy" or not first_deploy else EventType.JOB_DEPLOYED
        audit.record(
            session, event, username, job_name=manifest.name, job_version=manifest.version, deployment_id=deployment_id
        )


def after_failed_deploy(db: Database, deployment_id: str, manifest: Manifest, username: str | None) -> None:
    try:
        audit.record_in(
            db,
            EventType.DEPLOYMENT_FAILED,
            username,
            job_name=manifest.name,
            job_version=manifest.version,
            deployment_id=deployment_id,
        )
    except Exception:  # the failure itself is already recorded on the deployment
        log.exception("recording the failed deployment %s in the audit log", deployment_id)


def after_delete(db: Database, name: str, version: str, username: str | None, deployed_by: str | None) -> None:
    audit.record_in(db, EventType.JOB_DELETED, username, subject=deployed_by, job_name=name, job_version=version)
