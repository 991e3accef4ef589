"""`/deploy`: start a deploy, follow it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from trackside.auth.subjects import Caller
from trackside.lifecycle import deployments as deployments_service
from trackside.lifecycle import maintenance
from trackside.lifecycle.access import require_deploy_in
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.api.models import DeploymentDto, DeploymentId
from trackside.lifecycle.deployer import DeployRequest
from trackside.lifecycle.wiring import LifecycleContext

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
    return deployments_service.recent(context.db, context.settings.pub_url, limit)


@router.get("/deploy/{deployment_id}", response_model=DeploymentDto)
def deployment(
    deployment_id: str, _caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, Any]:
    return deployments_service.one(context.db, deployment_id, context.settings.pub_url)


def _checked_request(
    body: DeployBody, caller: Caller, context: LifecycleContext, doing: str, force: bool
) -> DeployRequest:
    """The deploy body as the deployer takes it, once maintenance mode and the caller's right to deploy
    the job allow it (a manifest without a name or version is refused by the deployer, saying why)."""
    maintenance.refuse_changes(context.db, doing)
    name, version = body.manifest.get("name"), body.manifest.get("version")
    if isinstance(name, str) and isinstance(version, str):
        require_deploy_in(context.db, caller, name, version)
    secret_vars = body.secret_vars or SecretVars()
    return DeployRequest(
        manifest=body.manifest,
        git_credentials=body.git_credentials.model_dump() if body.git_credentials else None,
        secret_vars={"build_env": secret_vars.build_env or {}, "runtime_env": secret_vars.runtime_env or {}},
        build_context=body.build_context,
        force=force,
        build_flags=body.build_flags,
    )
