"""`/auth`: permission questions, grants, and tokens (Racetrack's endpoints).

`can-call-job` lives in `gateway_auth.py`; this module is the rest: `allowed` checks for other
components, `allow` grants (ESC -> family, family -> family, one way), the ESC token, and
regenerating tokens (a user's own; all of a kind after the auth key changed). The checks, queries
and audit records are `trackside.lifecycle.authorization`'s.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from trackside.auth.service import AuthService
from trackside.auth.subjects import Caller
from trackside.auth.tokens import SubjectType
from trackside.lifecycle import authorization
from trackside.lifecycle.api.deps import get_auth, get_caller, get_context
from trackside.lifecycle.api.models import ApiError
from trackside.lifecycle.api.users import set_auth_cookie
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()

# A grant on a family, narrowed (both optional) to one of its versions and one endpoint.
GrantVersion = Annotated[str | None, Query(description="narrow the grant to one job version")]
GrantEndpoint = Annotated[str | None, Query(description="narrow the grant to one endpoint path")]
# Racetrack answers a refused `allowed` question with 401 (with the usual error body).
REFUSED: dict[int | str, dict[str, Any]] = {401: {"model": ApiError, "description": "not allowed"}}


class Allowed(BaseModel):
    allowed: bool


class Granted(BaseModel):
    granted: bool = Field(description="false: the grant existed already")
    subject: str
    job_family: str
    scope: str
    job_version: str | None
    endpoint: str | None


class Token(BaseModel):
    token: str


class RegeneratedToken(BaseModel):
    new_token: str


class Regenerated(BaseModel):
    regenerated: int
    kind: str


def _allowed(
    context: LifecycleContext, caller: Caller, name: str, version: str, scope: str, endpoint: str | None
) -> Response:
    authorization.require_allowed(context.db, caller, name, version, scope, endpoint)
    return JSONResponse({"allowed": True}, status_code=202)


@router.get(
    "/auth/allowed/job/{name}/{version}/scope/{scope}", status_code=202, response_model=Allowed, responses=REFUSED
)
def allowed_job(
    name: str,
    version: str,
    scope: str,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> Response:
    return _allowed(context, caller, name, version, scope, None)


@router.get(
    "/auth/allowed/job_endpoint/{name}/{version}/scope/{scope}/endpoint/{endpoint:path}",
    status_code=202,
    response_model=Allowed,
    responses=REFUSED,
)
def allowed_job_endpoint(
    name: str,
    version: str,
    scope: str,
    endpoint: str,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> Response:
    return _allowed(context, caller, name, version, scope, endpoint)


@router.post("/auth/allow/esc/{esc_id}/job/{family_name}/scope/{scope}", status_code=201, response_model=Granted)
def allow_esc(
    esc_id: str,
    family_name: str,
    scope: str,
    version: GrantVersion = None,
    endpoint: GrantEndpoint = None,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    return authorization.allow_esc(context.db, caller, esc_id, family_name, scope, version, endpoint)


@router.post("/auth/allow/job_family/{source}/job/{target}/scope/{scope}", status_code=201, response_model=Granted)
def allow_family(
    source: str,
    target: str,
    scope: str,
    version: GrantVersion = None,
    endpoint: GrantEndpoint = None,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    """Let jobs of family `source` call (or `scope`) family `target`; one way only."""
    return authorization.allow_family(context.db, caller, source, target, scope, version, endpoint)


@router.get("/auth/token/esc/{esc_id}", response_model=Token)
def esc_token(
    esc_id: str,
    caller: Caller = Depends(get_caller),
    auth: AuthService = Depends(get_auth),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, str]:
    return {"token": authorization.esc_token(context.db, auth, caller, esc_id)}


@router.post("/auth/token/user/regenerate", response_model=RegeneratedToken)
def regenerate_own_token(
    response: Response,
    caller: Caller = Depends(get_caller),
    auth: AuthService = Depends(get_auth),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, str]:
    """A new token for the calling user; every older one is revoked."""
    token = authorization.regenerate_own_token(context.db, auth, caller)
    set_auth_cookie(response, token)
    return {"new_token": token}


def _regenerate_all(kind: SubjectType, request: Request) -> dict[str, Any]:
    count = authorization.regenerate_all(get_context(request).db, get_auth(request), get_caller(request), kind)
    return {"regenerated": count, "kind": kind.value}


@router.post("/auth/token/user/all/regenerate", response_model=Regenerated)
def regenerate_user_tokens(request: Request) -> dict[str, Any]:
    return _regenerate_all(SubjectType.USER, request)


@router.post("/auth/token/job_family/regenerate", response_model=Regenerated)
def regenerate_family_tokens(request: Request) -> dict[str, Any]:
    return _regenerate_all(SubjectType.JOB_FAMILY, request)


@router.post("/auth/token/esc/regenerate", response_model=Regenerated)
def regenerate_esc_tokens(request: Request) -> dict[str, Any]:
    return _regenerate_all(SubjectType.ESC, request)
