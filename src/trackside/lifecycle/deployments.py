"""Deployment records: one per deploy, redeploy or build, with status, phase, error and build logs.

A deployment is written as it progresses, so its phase and logs are visible while it runs and what
happened is kept after it ends (or after the platform crashed in the middle of it).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.domain import DeploymentStatus
from trackside.errors import NotFound
from trackside.lifecycle import job_versions
from trackside.lifecycle.job_versions import timestamp
from trackside.manifest.versions import resolve_job_version
from trackside.store.base import utcnow
from trackside.store.database import Database
from trackside.store.models import Deployment


def deployment_to_api(deployment: Deployment, job: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": deployment.id,
        "status": deployment.status,
        "create_time": timestamp(deployment.create_time),
        "update_time": timestamp(deployment.update_time),
        "error": deployment.error,
        "job": job,
        "deployed_by": deployment.deployed_by,
        "phase": deployment.phase,
        "image_name": deployment.image_name,
        "infrastructure_target": deployment.infrastructure_target,
        "manifest_yaml": deployment.manifest,
        "job_name": deployment.job_name,
        "job_version": deployment.job_version,
        "warnings": deployment.warnings or None,
        "source_version": deployment.source_version,
    }


def _with_job(session: Session, deployment: Deployment, pub_url: str) -> dict[str, Any]:
    """The deployment's API shape; a finished deploy carries the job it made (a build makes none)."""
    job = None
    if deployment.status == "done" and deployment.kind != "build":
        found = job_versions.find_job(session, deployment.job_name, deployment.job_version)
        if found is not None:
            job = job_versions.job_to_dto(found, pub_url).to_api()
    return deployment_to_api(deployment, job)


def recent(db: Database, pub_url: str, limit: int = 100) -> list[dict[str, Any]]:
    """The latest deployments, newest first, in their API shape."""
    with db.session() as session:
        return [_with_job(session, d, pub_url) for d in list_deployments(session, limit)]


def one(db: Database, deployment_id: str, pub_url: str) -> dict[str, Any]:
    """A deployment in its API shape (404 for an unknown id)."""
    with db.session() as session:
        return _with_job(session, get_deployment(session, deployment_id), pub_url)


def get_deployment(session: Session, deployment_id: str) -> Deployment:
    deployment = session.get(Deployment, deployment_id)
    if deployment is None:
        raise NotFound(f"deployment {deployment_id} not found")
    return deployment


def list_deployments(session: Session, limit: int = 100) -> list[Deployment]:
    query = select(Deployment).order_by(Deployment.create_time.desc()).limit(limit)
    return list(session.scalars(query))


def latest_deployment(session: Session, name: str, version: str) -> Deployment | None:
    query = (
        select(Deployment)
        .where(Deployment.job_name == name, Deployment.job_version == version, Deployment.kind != "build")
        .order_by(Deployment.create_time.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def deployed_version(session: Session, name: str, alias: str) -> str | None:
    """The version an alias (`latest`, `1.x`) means among the versions deployments were made of, the
    failed ones included: a failed first deploy leaves no job to resolve it against, only its logs."""
    query = select(Deployment.job_version).where(Deployment.job_name == name, Deployment.kind != "build").distinct()
    return resolve_job_version(alias, list(session.scalars(query)))


def in_progress(session: Session, name: str, version: str) -> Deployment | None:
    """The deployment of this job version in progress, if any (there is at most one)."""
    query = select(Deployment).where(
        Deployment.job_name == name,
        Deployment.job_version == version,
        Deployment.status == DeploymentStatus.IN_PROGRESS.value,
    )
    return session.scalars(query).first()


def versions_in_progress(session: Session) -> set[tuple[str, str]]:
    """(name, version) of every job version with a deployment in progress."""
    query = select(Deployment.job_name, Deployment.job_version).where(
        Deployment.status == DeploymentStatus.IN_PROGRESS.value
    )
    return {(row.job_name, row.job_version) for row in session.execute(query)}


INTERRUPTED_ERROR = "deployment halted: the platform restarted while it was in progress; deploy again"


class DeploymentProgress:
    """Writes one deployment's phase and build log lines as they happen.

    Log lines are batched (flushed at most every `flush_interval` seconds and at every phase
    change) so a chatty installer does not turn into thousands of write transactions.
    """

    def __init__(
        self, db: Database, deployment_id: str, secrets: list[str] | None = None, flush_interval: float = 0.5
    ) -> None:
        self.db = db
        self.id = deployment_id
        self._secrets = [s for s in (secrets or []) if s]
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self.flush_interval = flush_interval
        self._step: str | None = None

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def log(self, line: str) -> None:
        with self._lock:
            self._pending.append(self.redact(line))
            due = time.monotonic() - self._last_flush >= self.flush_interval
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
            self._last_flush = time.monotonic()
        if not lines:
            return
        with self.db.session() as session:
            deployment = get_deployment(session, self.id)
            deployment.build_logs = (deployment.build_logs or "") + "\n".join(lines) + "\n"
            deployment.update_time = utcnow()

    def phase(self, phase: str) -> None:
        self.flush()
        self.update(phase=phase)

    def step(self, step: str) -> None:
        """The pipeline step it is at (lifecycle/pipeline.py): written with the step's first phase or
        update, so entering a step costs no write of its own."""
        self._step = step

    def warn(self, warning: str) -> None:
        with self.db.session() as session:
            deployment = get_deployment(session, self.id)
            deployment.warnings = ((deployment.warnings + "\n") if deployment.warnings else "") + warning

    def update(self, **fields: Any) -> None:
        if self._step is not None:
            fields.setdefault("step", self._step)
            self._step = None
        with self.db.session() as session:
            deployment = get_deployment(session, self.id)
            for key, value in fields.items():
                setattr(deployment, key, value)
            deployment.update_time = utcnow()

    def done(self) -> None:
        self.flush()
        self.update(status=DeploymentStatus.DONE.value, phase="done")

    def failed(self, error: str) -> None:
        self.log(f"deployment failed: {error}")  # the build log says why it ends there
        self.flush()
        self.update(status=DeploymentStatus.FAILED.value, error=self.redact(error))
