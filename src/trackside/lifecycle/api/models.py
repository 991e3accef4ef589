"""The lifecycle API's response shapes that more than one router answers with.

Racetrack's client (`racetrack-client`) and our CLI parse these; each keeps the JSON shape the route
answered with before it had a model (tests/lifecycle/api/test_response_models.py compares them with
what the Racetrack client reads). A route's own shapes live next to the route.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from trackside.domain import JobDto

__all__ = [
    "ApiError",
    "DeploymentDto",
    "DeploymentId",
    "JobDto",
    "Logs",
    "Message",
    "ERROR_RESPONSES",
]


class ApiError(BaseModel):
    """Every 4xx and 5xx answer: what went wrong, and the error's kind."""

    error: str
    type: str


# Documented on every route (a validation error is a 400 with this body, not FastAPI's 422).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ApiError, "description": description}
    for code, description in (
        (400, "invalid input"),
        (401, "no live token"),
        (403, "not permitted"),
        (404, "not found"),
        (409, "conflicts with the current state"),
        (503, "unavailable (maintenance mode, or a component is missing)"),
    )
}


class Message(BaseModel):
    message: str


class DeploymentId(BaseModel):
    """A deployment started in the background: follow it at `/deploy/{id}`."""

    id: str


class DeploymentDto(BaseModel):
    """Racetrack's DeploymentDto: `racetrack deploy` polls it for `status`, `phase`, `warnings`, `error`
    and, once done, `job.pub_url`."""

    id: str
    status: str
    create_time: int | None
    update_time: int | None
    error: str | None
    job: JobDto | None
    deployed_by: str | None
    phase: str | None
    image_name: str | None
    infrastructure_target: str | None
    manifest_yaml: str | None
    job_name: str
    job_version: str
    warnings: str | None
    source_version: str | None = None  # the exact source built: a git commit or sha256:<digest of the upload>


class Logs(BaseModel):
    logs: str
