"""Permission checks with Racetrack's matching rules (docs/auth.md).

A permission row allows `scope` (or everything, for `full_access`) to one subject, narrowed by an
optional family, job version and endpoint; an empty filter means "any". A check passes when any
row matches. There are no deny rules. Endpoint-level checks (gateway calls) compare the endpoint
exactly, after normalising the leading and trailing slash, so a grant on `/api/v1/perform` is no
grant on `/api/v1/other`; rows narrowed to an endpoint never satisfy a job-level check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from trackside.auth.scopes import Scope
from trackside.store.auth_models import AuthResourcePermission


@dataclass(frozen=True)
class Grant:
    scope: str
    family_id: str | None = None
    job_id: str | None = None
    endpoint: str | None = None


@dataclass(frozen=True)
class Resource:
    """What a check is about; None everywhere means a scope-only check ("may deploy at all?")."""

    family_id: str | None = None
    job_id: str | None = None
    endpoint: str | None = None


def normalize_endpoint(path: str) -> str:
    path = "/" + path.lstrip("/")
    return path.rstrip("/") or "/"


def grant_matches(grant: Grant, scope: Scope | str, resource: Resource) -> bool:
    if grant.scope not in (str(scope), Scope.FULL_ACCESS.value):
        return False
    if resource.family_id is None and resource.job_id is None and resource.endpoint is None:
        return True  # scope-only check
    if grant.family_id is not None and grant.family_id != resource.family_id:
        return False
    if grant.job_id is not None and grant.job_id != resource.job_id:
        return False
    if grant.endpoint is not None:
        if resource.endpoint is None:
            return False
        return normalize_endpoint(grant.endpoint) == normalize_endpoint(resource.endpoint)
    return True


def any_grant_matches(grants: Iterable[Grant], scope: Scope | str, resource: Resource) -> bool:
    return any(grant_matches(grant, scope, resource) for grant in grants)


def internal_scopes_allow(scopes: list[str] | None, scope: Scope | str) -> bool:
    """Internal tokens carry their scopes in the token: empty passes all, `full_access` too."""
    if not scopes:
        return True
    return Scope.FULL_ACCESS.value in scopes or str(scope) in scopes


def load_grants(session: Session, subject_id: str) -> list[Grant]:
    rows = session.scalars(select(AuthResourcePermission).where(AuthResourcePermission.auth_subject_id == subject_id))
    return [Grant(r.scope, r.job_family_id, r.job_id, r.endpoint) for r in rows]


def add_grant(
    session: Session,
    subject_id: str,
    scope: Scope | str,
    family_id: str | None = None,
    job_id: str | None = None,
    endpoint: str | None = None,
) -> bool:
    """Store a permission row unless an identical one exists; returns whether one was added."""
    query = select(AuthResourcePermission).where(
        AuthResourcePermission.auth_subject_id == subject_id,
        AuthResourcePermission.scope == str(scope),
        _eq_or_null(AuthResourcePermission.job_family_id, family_id),
        _eq_or_null(AuthResourcePermission.job_id, job_id),
        _eq_or_null(AuthResourcePermission.endpoint, endpoint),
    )
    if session.scalars(query).first() is not None:
        return False
    session.add(
        AuthResourcePermission(
            auth_subject_id=subject_id, scope=str(scope), job_family_id=family_id, job_id=job_id, endpoint=endpoint
        )
    )
    session.flush()
    return True


def _eq_or_null(column: InstrumentedAttribute[str | None], value: str | None) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value
