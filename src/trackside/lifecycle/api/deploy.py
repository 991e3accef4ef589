"""`/deploy`: start a deploy, follow it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from trackside.auth.subjects import Caller
from trackside.lifecycle import job_versions, maintenance
from trackside.lifecycle.access import require_deploy
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.api.models import DeploymentDto, DeploymentId
from trackside.lifecycle.deployer import DeployRequest
from trackside.lifecycle.deployments import deployment_to_api, get_deployment, list_deployments
from trackside.lifecycle.wiring import LifecycleContext
from trackside.store.models import Deployment

router = APIRouter()


class GitCredentials(BaseModel):
    username: str | None = None
    password: str | None = None


class SecretVars(BaseModel):
    build_env: dict[str, str] | None = None
    runtime_env: dict[str, str] | None = None


class DeployBody(BaseModel):
    model_config = ConfigDict(extra="ignore")  # newer clients may send fields we don't use yet

    manifest: dict[str, Any]
    git_credentials: GitCredentials | None = None
    secret_vars: SecretVars | None = None
    build_context: str | None = None
    force: bool = False
    build_flags: list[str] = Field(default_factory=list)


def _deployment_api(context: LifecycleContext, session: Session, deployment: Deployment) -> dict[str, Any]:
    job = None
    if deployment.status == "done" and deployment.kind != "build":  # a build deploys no job
        found = job_versions.find_job(session, deployment.job_name, deployment.job_version)
        if found is not None:
            job = job_versions.job_to_dto(found, context.settings.pub_url).to_api()
    return deployment_to_api(deployment, job)


@router.post("/deploy", status_code=201, response_model=DeploymentId)
def deploy(
    body: DeployBody, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    request = _checked_request(body, caller, context, "deploying", force=body.force)
    deployment_id = context.deployer.start_deploy(request, username=caller.username)
    return {"id": deployment_id}


@router.post("/build", status_code=201, response_model=DeploymentId)
def build(
    body: DeployBody, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> DeploymentId:
    """Build the job's image without deploying it (`racetrack run-local`): follow `/deploy/{id}` until
    it is done, then `image_name` names the image in the registry. Needs the right to deploy the job."""
    request = _checked_request(body, caller, context, "building", force=False)
    deployment_id = context.deployer.start_build(request, username=caller.username)
    return DeploymentId(id=deployment_id)


@router.get("/deploy", response_model=list[DeploymentDto])
def deployments(
    limit: int = Query(100, ge=1, le=1000),
    _caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> list[dict[str, Any]]:
    with context.db.session() as session:
        return [_deployment_api(context, session, d) for d in list_deployments(session, limit)]


@router.get("/deploy/{deployment_id}", response_model=DeploymentDto)
def deployment(
    deployment_id: str, _caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    with context.db.session() as session:
        return _deployment_api(context, session, get_deployment(session, deployment_id))


def _checked_request(
    body: DeployBody, caller: Caller, context: LifecycleContext, doing: str, force: bool
) -> DeployRequest:
    """The deploy body as the deployer takes it, once maintenance mode and the caller's right to deploy
    the job allow it (a manifest without a name or version is refused by the deployer, saying why)."""
    maintenance.refuse_changes(context.db, doing)
    name, version = body.manifest.get("name"), body.manifest.get("version")
    if isinstance(name, str) and isinstance(version, str):
        with context.db.session() as session:
            require_deploy(session, caller, name, version)
    secret_vars = body.secret_vars or SecretVars()
    return DeployRequest(
        manifest=body.manifest,
        git_credentials=body.git_credentials.model_dump() if body.git_credentials else None,
        secret_vars={"build_env": secret_vars.build_env or {}, "runtime_env": secret_vars.runtime_env or {}},
        build_context=body.build_context,
        force=force,
        build_flags=body.build_flags,
    )
