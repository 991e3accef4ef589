"""Audit log pages: filtered like `/audit/activity`, paged, and limited to what the caller may see.

Staff see every event. Anyone else sees events they did or were the subject of, and events about
job families they may read (any version of the family).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from trackside.auth.permissions import Resource
from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.lifecycle import audit
from trackside.lifecycle.access import Grants, require_user
from trackside.lifecycle.paging import visible_page
from trackside.store.auth_models import AuditLogEvent
from trackside.store.database import Database
from trackside.store.models import Job


def _readable_families(session: Session, caller: Caller) -> set[str]:
    grants = Grants.of(session, caller)
    return {
        name
        for job_id, family_id, name in session.execute(select(Job.id, Job.family_id, Job.name))
        if grants.allows(Scope.READ_JOB, Resource(family_id, job_id))
    }


def page(
    db: Database,
    caller: Caller,
    *,
    job_name: str | None,
    job_version: str | None,
    related_to_me: bool,
    offset: int,
    limit: int,
) -> dict[str, Any]:
    """One page of the events the caller may see (users only), latest first."""
    require_user(caller)
    with db.session() as session:
        query = select(AuditLogEvent)
        if job_name:
            query = query.where(AuditLogEvent.job_name == job_name)
        if job_version:
            query = query.where(AuditLogEvent.job_version == job_version)
        me = caller.name
        if related_to_me:
            query = query.where(or_(AuditLogEvent.username_executor == me, AuditLogEvent.username_subject == me))
        query = query.order_by(AuditLogEvent.timestamp.desc(), AuditLogEvent.id)
        everything = caller.is_staff
        families = set() if everything else _readable_families(session, caller)

        def visible(event: AuditLogEvent) -> bool:
            if everything or me in (event.username_executor, event.username_subject):
                return True
            return event.job_name is not None and event.job_name in families

        events, more = visible_page(session, query, visible, audit.event_to_api, offset, limit)
        return {"offset": offset, "limit": limit, "has_more": more, "events": events}
