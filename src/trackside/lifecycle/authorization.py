"""Racetrack's `/auth` questions and grants, for other components and admin clients: may this caller
do that to a job, one-way grants to an ESC or a job family, an ESC's token, and regenerating tokens.
Each function checks the caller and audits what it changes; `can-call-job` is in `call_access`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.permissions import add_grant, normalize_endpoint
from trackside.auth.scopes import Scope, parse_scope
from trackside.auth.service import AuthService
from trackside.auth.subjects import Caller, subject_of
from trackside.auth.tokens import SubjectType
from trackside.errors import NotFound, Unauthorized
from trackside.lifecycle import audit, job_versions
from trackside.lifecycle.access import Grants, require_scope, require_user
from trackside.lifecycle.audit import EventType
from trackside.store.auth_models import Esc, User
from trackside.store.database import Database
from trackside.store.models import Job, JobFamily


def _family(session: Session, name: str) -> JobFamily:
    family = session.scalars(select(JobFamily).where(JobFamily.name == name)).first()
    if family is None:
        raise NotFound(f"job family {name} not found")
    return family


def require_allowed(db: Database, caller: Caller, name: str, version: str, scope: str, endpoint: str | None) -> None:
    """Unauthorized (401, as Racetrack answers) unless the caller has `scope` on the job (and endpoint)."""
    wanted = parse_scope(scope)
    path = normalize_endpoint(endpoint) if endpoint is not None else None
    with db.session() as session:
        job = job_versions.get_job(session, name, version)
        if not Grants.of(session, caller).allows_job(wanted, job, path):
            where = f" endpoint {path}" if path is not None else ""
            raise Unauthorized(f"{caller.display} has no {wanted.value} permission on job {name} {version}{where}")


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


def allow_esc(
    db: Database, caller: Caller, esc_id: str, family_name: str, scope: str, version: str | None, endpoint: str | None
) -> dict[str, Any]:
    """Grant an ESC `scope` on a family (narrowed to a version and endpoint when given)."""
    wanted = parse_scope(scope)
    with db.session() as session:
        require_scope(session, caller, Scope.CALL_ADMIN_API)
        esc = session.get(Esc, esc_id)
        if esc is None:
            raise NotFound(f"ESC {esc_id} not found")
        subject_id = subject_of(session, esc_id=esc.id).id
        return _grant(
            session, caller, subject_id, f"ESC {esc.name}", family_name, wanted, version, endpoint, esc_id=esc.id
        )


def allow_family(
    db: Database, caller: Caller, source: str, target: str, scope: str, version: str | None, endpoint: str | None
) -> dict[str, Any]:
    """Let jobs of family `source` call (or `scope`) family `target`; one way only."""
    wanted = parse_scope(scope)
    with db.session() as session:
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


def esc_token(db: Database, auth: AuthService, caller: Caller, esc_id: str) -> str:
    """A live token of the ESC (a new one if it has none)."""
    with db.session() as session:
        require_scope(session, caller, Scope.CALL_ADMIN_API)
        esc = session.get(Esc, esc_id)
        if esc is None:
            raise NotFound(f"ESC {esc_id} not found")
        subject = subject_of(session, esc_id=esc.id)
        return auth.live_token(session, subject) or auth.issue(session, subject, esc.id, SubjectType.ESC)[1]


def regenerate_own_token(db: Database, auth: AuthService, caller: Caller) -> str:
    """A new token for the calling user; every older one is revoked."""
    require_user(caller)
    with db.session() as session:
        user = session.scalars(select(User).where(User.username == caller.name)).one()
        token = auth.regenerate_user_token(session, user)
        audit.record(session, EventType.TOKENS_REGENERATED, caller.username, subject=caller.name, kind="user")
    return token


def regenerate_all(db: Database, auth: AuthService, caller: Caller, kind: SubjectType) -> int:
    """Re-sign every token of a kind (after the auth key changed); how many."""
    with db.session() as session:
        require_scope(session, caller, Scope.CALL_ADMIN_API)
    count = auth.regenerate_all(kind)
    audit.record_in(db, EventType.TOKENS_REGENERATED, caller.username, kind=kind.value, count=count)
    return count
