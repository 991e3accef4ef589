"""Deployments a caller may see: their own, those of jobs they may read, and all of them for staff."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.permissions import Resource
from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.errors import NotFound
from trackside.lifecycle.access import Grants
from trackside.lifecycle.job_versions import timestamp
from trackside.lifecycle.paging import visible_page
from trackside.store.database import Database
from trackside.store.models import Deployment, Job


class _Visibility:
    def __init__(self, session: Session, caller: Caller) -> None:
        self.caller = caller
        self.everything = caller.is_staff or (
            caller.is_internal and Grants.of(session, caller).allows(Scope.READ_JOB, Resource())
        )
        self.grants = Grants.of(session, caller)
        rows = session.execute(select(Job.id, Job.family_id, Job.name, Job.version))
        self.jobs = {(n, v): (f, i) for i, f, n, v in rows}

    def allows(self, deployment: Deployment) -> bool:
        if self.everything or (deployment.deployed_by and deployment.deployed_by == self.caller.username):
            return True
        found = self.jobs.get((deployment.job_name, deployment.job_version))
        return found is not None and self.grants.allows(Scope.READ_JOB, Resource(found[0], found[1]))


def summary(deployment: Deployment) -> dict[str, Any]:
    return {
        "id": deployment.id,
        "status": deployment.status,
        "phase": deployment.phase,
        "kind": deployment.kind,
        "job_name": deployment.job_name,
        "job_version": deployment.job_version,
        "deployed_by": deployment.deployed_by,
        "infrastructure_target": deployment.infrastructure_target,
        "error": deployment.error,
        "create_time": timestamp(deployment.create_time),
        "update_time": timestamp(deployment.update_time),
    }


def list_visible(db: Database, caller: Caller, offset: int, limit: int, mine: bool) -> dict[str, Any]:
    """Newest first; `has_more` says whether another page follows."""
    with db.session() as session:
        visibility = _Visibility(session, caller)
        query = select(Deployment).order_by(Deployment.create_time.desc())
        if mine:
            query = query.where(Deployment.deployed_by == caller.username)
        items, more = visible_page(session, query, visibility.allows, summary, offset, limit)
        return {"offset": offset, "limit": limit, "has_more": more, "items": items}


def get_visible(db: Database, caller: Caller, deployment_id: str, tail: int) -> dict[str, Any]:
    with db.session() as session:
        deployment = session.get(Deployment, deployment_id)
        if deployment is None or not _Visibility(session, caller).allows(deployment):
            raise NotFound(f"deployment {deployment_id} not found")
        logs = deployment.build_logs or ""
        if tail > 0:
            logs = "\n".join(logs.splitlines()[-tail:])
        return {
            **summary(deployment),
            "manifest_yaml": deployment.manifest,
            "image_name": deployment.image_name,
            "warnings": deployment.warnings or None,
            "build_logs": logs,
        }
