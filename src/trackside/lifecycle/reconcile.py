"""Reconcile: reprovision every lost job (Racetrack's "reconcile jobs now").

A lost job is one whose row says it should run but whose target reports nothing of it (the
supervisor marks it `lost`). Each one is reprovisioned through the deploy pipeline, from the build it
ran, nothing rebuilt (`DeployService.start_reprovision`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trackside.domain import JobStatus
from trackside.errors import TracksideError
from trackside.lifecycle import job_versions

if TYPE_CHECKING:
    from trackside.lifecycle.deployer import DeployService


def lost_jobs(service: DeployService) -> list[tuple[str, str]]:
    with service.db.session() as session:
        return [(j.name, j.version) for j in job_versions.list_jobs(session) if j.status == JobStatus.LOST.value]


def reconcile(service: DeployService, username: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """Start a reprovision of every lost job: ({"name version": deployment id}, {"name version": why not})."""
    started: dict[str, str] = {}
    failed: dict[str, str] = {}
    for name, version in lost_jobs(service):
        try:
            started[f"{name} {version}"] = service.start_reprovision(name, version, username=username)
        except TracksideError as exc:
            failed[f"{name} {version}"] = exc.message
    return started, failed
