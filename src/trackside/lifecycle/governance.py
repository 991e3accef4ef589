"""What the deploy service does for governance around a deploy or delete: grants, public
endpoint requests, audit events, and the family token jobs get as AUTH_TOKEN.

Kept out of the deploy pipeline so that it calls three functions and knows nothing about auth.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.service import AuthService
from trackside.config import Settings
from trackside.lifecycle import audit
from trackside.lifecycle.access import grant_deployer
from trackside.lifecycle.audit import EventType
from trackside.manifest.model import Manifest
from trackside.store.auth_models import PublicEndpointRequest
from trackside.store.database import Database
from trackside.store.models import Job

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


def record_serving(
    session: Session,
    job: Job,
    deployment_id: str,
    kind: str,
    manifest: Manifest,
    username: str | None,
    first_deploy: bool,
) -> None:
    """What goes with a job starting to serve, in the transaction that switches traffic to it: the
    deployer's grants on a first deploy, the manifest's public endpoint requests, the audit event."""
    if first_deploy:
        session.flush()  # the job's id, for the grants
        grant_deployer(session, username, job)
    existing = {
        r.endpoint for r in session.scalars(select(PublicEndpointRequest).where(PublicEndpointRequest.job_id == job.id))
    }
    for endpoint in manifest.public_endpoints or []:
        if endpoint not in existing:
            session.add(PublicEndpointRequest(job_id=job.id, endpoint=endpoint, active=False))
    if kind == "move":
        event = EventType.JOB_MOVED
    elif first_deploy and kind == "deploy":
        event = EventType.JOB_DEPLOYED
    else:
        event = EventType.JOB_REDEPLOYED
    audit.record(
        session,
        event,
        username,
        job_name=manifest.name,
        job_version=manifest.version,
        deployment_id=deployment_id,
        infrastructure_target=job.infrastructure_target if kind == "move" else None,
    )


def after_failed_deploy(db: Database, deployment_id: str, name: str, version: str, username: str | None) -> None:
    try:
        audit.record_in(
            db,
            EventType.DEPLOYMENT_FAILED,
            username,
            job_name=name,
            job_version=version,
            deployment_id=deployment_id,
        )
    except Exception:  # the failure itself is already recorded on the deployment
        log.exception("recording the failed deployment %s in the audit log", deployment_id)


def after_delete(db: Database, name: str, version: str, username: str | None, deployed_by: str | None) -> None:
    audit.record_in(db, EventType.JOB_DELETED, username, subject=deployed_by, job_name=name, job_version=version)
