"""`/auth`: permission questions, grants, and tokens (Racetrack's endpoints).

`can-call-job` lives in `gateway_auth.py`; this module is the rest: `allowed` checks for other
components, `allow` grants (ESC -> family, family -> family, one way), the ESC token, and
regenerating tokens (a user's own; all of a kind after the auth key changed).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.permissions import add_grant, normalize_endpoint
from trackside.auth.scopes import Scope, parse_scope
from trackside.auth.service import AuthService
from trackside.auth.subjects import Caller, subject_of
from trackside.auth.tokens import SubjectType
from trackside.errors import NotFound, Unauthorized
from trackside.lifecycle import audit, registry
from trackside.lifecycle.access import Grants, require_scope, require_user
from trackside.lifecycle.api.deps import get_auth, get_caller, get_context
from trackside.lifecycle.api.models import ApiError
from trackside.lifecycle.api.users import set_auth_cookie
from trackside.lifecycle.audit import EventType
from trackside.lifecycle.context import LifecycleContext
from trackside.store.auth_models import Esc, User
from trackside.store.models import Job, JobFamily

router = APIRouter()
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


def _family(session: Session, name: str) -> JobFamily:
    family = session.scalars(select(JobFamily).where(JobFamily.name == name)).first()
    if family is None:
        raise NotFound(f"job family {name} not found")
    return family


def _allowed(
    context: LifecycleContext, caller: Caller, name: str, version: str, scope: str, endpoint: str | None
) -> Response:
    wanted = parse_scope(scope)
    with context.db.session() as session:
        job = registry.get_job(session, name, version)
        if not Grants.of(session, caller).allows_job(wanted, job, endpoint):
            where = f" endpoint {endpoint}" if endpoint is not None else ""
            # Racetrack answers a refusal here with 401.
            raise Unauthorized(f"{caller.display} has no {wanted.value} permission on job {name} {version}{where}")
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
    return _allowed(context, caller, name, version, scope, normalize_endpoint(endpoint))


def _narrowing(
    session: Session, family: JobFamily, version: str | None, endpoint: str | None
) -> tuple[str | None, str | None]:
    job_id = None
    if version is not None:
        job = session.scalars(select(Job).where(Job.family_id == family.id, Job.version == version)).first()
        if job is None:
            raise NotFound(f"job {family.name} version {version} not found")
        job_id = job.id
    return job_id, normalize_endpoint(endpoint) if endpoint else None


@router.post("/auth/allow/esc/{esc_id}/job/{family_name}/scope/{scope}", status_code=201, response_model=Granted)
def allow_esc(
    esc_id: str,
    family_name: str,
    scope: str,
    version: str | None = Query(None, description="narrow the grant to one job version"),
    endpoint: str | None = Query(None, description="narrow the grant to one endpoint path"),
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    wanted = parse_scope(scope)
    with context.db.session() as session:
        require_scope(session, caller, Scope.CALL_ADMIN_API)
        esc = session.get(Esc, esc_id)
        if esc is None:
            raise NotFound(f"ESC {esc_id} not found")
        subject_id = subject_of(session, esc_id=esc.id).id
        return _grant(
            session, caller, subject_id, f"ESC {esc.name}", family_name, wanted, version, endpoint, esc_id=esc.id
        )


@router.post("/auth/allow/job_family/{source}/job/{target}/scope/{scope}", status_code=201, response_model=Granted)
def allow_family(
    source: str,
    target: str,
    scope: str,
    version: str | None = Query(None, description="narrow the grant to one job version"),
    endpoint: str | None = Query(None, description="narrow the grant to one endpoint path"),
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    """Let jobs of family `source` call (or `scope`) family `target`; one way only."""
    wanted = parse_scope(scope)
    with context.db.session() as session:
        require_scope(session, caller, Scope.CALL_ADMIN_API)
        subject_id = subject_of(session, job_family_id=_family(session, source).id).id
        return _grant(session, caller, subject_id, f"Job family {source}", target, wanted, version, endpoint)


def _grant(
    session: Session,
    caller: Caller,
    subject_id: str,
    grantee: str,
    family_name: str,
    scope: Scope,
    version: str | None,
    endpoint: str | None,
    **audit_details: Any,
) -> dict[str, Any]:
    """Grant `scope` on a family (narrowed to a version and endpoint when given), audited; the answer."""
    family = _family(session, family_name)
    job_id, path = _narrowing(session, family, version, endpoint)
    added = add_grant(session, subject_id, scope, family.id, job_id, path)
    audit.record(
        session,
        EventType.PERMISSION_GRANTED,
        caller.username,
        job_name=family.name,
        job_version=version,
        grantee=grantee,
        scope=scope.value,
        endpoint=path,
        **audit_details,
    )
    return {
        "granted": added,
        "subject": grantee,
        "job_family": family_name,
        "scope": scope.value,
        "job_version": version,
        "endpoint": path,
    }


@router.get("/auth/token/esc/{esc_id}", response_model=Token)
def esc_token(
    esc_id: str,
    caller: Caller = Depends(get_caller),
    auth: AuthService = Depends(get_auth),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, str]:
    with context.db.session() as session:
        require_scope(session, caller, Scope.CALL_ADMIN_API)
        esc = session.get(Esc, esc_id)
        if esc is None:
            raise NotFound(f"ESC {esc_id} not found")
        subject = subject_of(session, esc_id=esc.id)
        token = auth.live_token(session, subject) or auth.issue(session, subject, esc.id, SubjectType.ESC)[1]
    return {"token": token}


@router.post("/auth/token/user/regenerate", response_model=RegeneratedToken)
def regenerate_own_token(
    response: Response,
    caller: Caller = Depends(get_caller),
    auth: AuthService = Depends(get_auth),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, str]:
    """A new token for the calling user; every older one is revoked."""
    require_user(caller)
    with context.db.session() as session:
        user = session.scalars(select(User).where(User.username == caller.name)).one()
        token = auth.regenerate_user_token(session, user)
        audit.record(session, EventType.TOKENS_REGENERATED, caller.username, subject=caller.name, kind="user")
    set_auth_cookie(response, token)
    return {"new_token": token}


def _regenerate_all(kind: SubjectType, request: Request) -> dict[str, Any]:
    context: LifecycleContext = get_context(request)
    caller = get_caller(request)
    with context.db.session() as session:
        require_scope(session, caller, Scope.CALL_ADMIN_API)
    count = get_auth(request).regenerate_all(kind)
    audit.record_in(context.db, EventType.TOKENS_REGENERATED, caller.username, kind=kind.value, count=count)
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
