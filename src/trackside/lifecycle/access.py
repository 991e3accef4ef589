"""Access decisions in the lifecycle: may this caller do `scope` on this job (and endpoint)?

The one place where callers meet permission rows, used by every router and by can-call-job.
Refusals name the caller, the scope and the job, never the token.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.permissions import (
    Grant,
    Resource,
    add_grant,
    any_grant_matches,
    internal_scopes_allow,
    load_grants,
)
from trackside.auth.scopes import DEPLOYER_SCOPES, Scope
from trackside.auth.subjects import Caller, subject_of
from trackside.errors import Forbidden
from trackside.store.auth_models import User
from trackside.store.database import Database
from trackside.store.models import Job, JobFamily


class Grants:
    """A caller's permission rows, loaded once per request (listing 10,000 jobs checks each)."""

    def __init__(self, caller: Caller, grants: list[Grant]) -> None:
        self.caller = caller
        self.grants = grants

    @classmethod
    def of(cls, session: Session, caller: Caller) -> Grants:
        if caller.is_internal or caller.subject_id is None:
            return cls(caller, [])
        return cls(caller, load_grants(session, caller.subject_id))

    def allows(self, scope: Scope, resource: Resource) -> bool:
        if self.caller.is_internal:
            return internal_scopes_allow(self.caller.scopes, scope)
        return any_grant_matches(self.grants, scope, resource)

    def allows_job(self, scope: Scope, job: Job, endpoint: str | None = None) -> bool:
        return self.allows(scope, Resource(job.family_id, job.id, endpoint))

    def readable(self, jobs: Iterable[Job]) -> list[Job]:
        return [job for job in jobs if self.allows_job(Scope.READ_JOB, job)]


def require_scope(session: Session, caller: Caller, scope: Scope) -> None:
    """A scope-only check: does any row give the caller this scope at all?"""
    if not Grants.of(session, caller).allows(scope, Resource()):
        raise Forbidden(f"{caller.display} has no {scope.value} permission")


def require_scope_in(db: Database, caller: Caller, scope: Scope) -> None:
    """`require_scope` in a transaction of its own."""
    with session_with_scope(db, caller, scope):
        pass


@contextmanager
def session_with_scope(db: Database, caller: Caller, scope: Scope) -> Iterator[Session]:
    """A transaction in which the caller has been found to hold `scope` (403 otherwise)."""
    with db.session() as session:
        require_scope(session, caller, scope)
        yield session


def require_job(session: Session, caller: Caller, scope: Scope, job: Job, endpoint: str | None = None) -> None:
    if not Grants.of(session, caller).allows_job(scope, job, endpoint):
        where = f" endpoint {endpoint}" if endpoint is not None else ""
        raise Forbidden(f"{caller.display} has no {scope.value} permission on job {job.name} {job.version}{where}")


def require_deploy(session: Session, caller: Caller, name: str, version: str) -> None:
    """deploy_job on the family (and on the version, if it exists) when the family exists, else deploy_new_family."""
    family = session.scalars(select(JobFamily).where(JobFamily.name == name)).first()
    grants = Grants.of(session, caller)
    if family is None:
        if not grants.allows(Scope.DEPLOY_NEW_FAMILY, Resource()):
            raise Forbidden(f"{caller.display} has no deploy_new_family permission (job {name} is a new family)")
        return
    job = session.scalars(select(Job).where(Job.name == name, Job.version == version)).first()
    # A version that doesn't exist yet matches only rows not narrowed to one job version.
    resource = Resource(family.id, job.id if job is not None else "", None)
    if not grants.allows(Scope.DEPLOY_JOB, resource):
        raise Forbidden(f"{caller.display} has no deploy_job permission on job family {name}")


def require_deploy_in(db: Database, caller: Caller, name: str, version: str) -> None:
    """`require_deploy` in a transaction of its own."""
    with db.session() as session:
        require_deploy(session, caller, name, version)


def require_staff(caller: Caller) -> None:
    """Staff endpoints: an active user marked staff (internal tokens are not users)."""
    if not (caller.is_user and caller.is_staff):
        raise Forbidden(f"{caller.display} is not staff: this needs an administrator's user token")


def require_user(caller: Caller) -> None:
    if not caller.is_user:
        raise Forbidden(f"{caller.display} is not a user: this needs a user's token")


def grant_deployer(session: Session, username: str | None, job: Job) -> None:
    """The first deploy of a job gives its deployer read, call, deploy and delete on exactly that job."""
    if not username:
        return
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        return
    subject = subject_of(session, user_id=user.id)
    for scope in DEPLOYER_SCOPES:
        add_grant(session, subject.id, scope, family_id=job.family_id, job_id=job.id)
