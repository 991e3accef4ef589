"""The audit log: every change as an event with who did it, what, when, and to which job.

`record` writes one event in the caller's transaction (so a change and its event commit
together); `record_in` opens its own. Properties never hold secret values: callers pass names
and ids only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from trackside.auth.subjects import Caller
from trackside.lifecycle.access import require_user
from trackside.store.auth_models import AuditLogEvent
from trackside.store.database import Database


class EventType(StrEnum):
    JOB_DEPLOYED = "job_deployed"
    JOB_REDEPLOYED = "job_redeployed"
    JOB_DELETED = "job_deleted"
    JOB_MOVED = "job_moved"
    DEPLOYMENT_FAILED = "deployment_failed"
    MANIFEST_UPDATED = "manifest_updated"
    PLUGIN_INSTALLED = "plugin_installed"
    PLUGIN_UNINSTALLED = "plugin_uninstalled"
    USER_REGISTERED = "user_registered"
    USER_CREATED = "user_created"
    USER_ACTIVATED = "user_activated"
    USER_DEACTIVATED = "user_deactivated"
    USER_DELETED = "user_deleted"
    PASSWORD_CHANGED = "password_changed"
    ESC_CREATED = "esc_created"
    TOKEN_ISSUED = "token_issued"
    TOKEN_REVOKED = "token_revoked"
    TOKENS_REGENERATED = "tokens_regenerated"
    PERMISSION_GRANTED = "permission_granted"
    PERMISSION_REVOKED = "permission_revoked"
    PUBLIC_ENDPOINT_APPROVED = "public_endpoint_approved"
    SETTING_CHANGED = "setting_changed"


_EXPLANATIONS: dict[str, str] = {
    EventType.JOB_DEPLOYED: "job {job} has been deployed by {executor}",
    EventType.JOB_REDEPLOYED: "job {job} has been redeployed by {executor}",
    EventType.JOB_DELETED: "job {job}{owner} has been deleted by {executor}",
    EventType.JOB_MOVED: "job {job} has been moved by {executor}",
    EventType.DEPLOYMENT_FAILED: "deployment of job {job} by {executor} has failed",
    EventType.MANIFEST_UPDATED: "manifest of job {job} has been edited by {executor}",
    EventType.PLUGIN_INSTALLED: "plugin {plugin} has been installed by {executor}",
    EventType.PLUGIN_UNINSTALLED: "plugin {plugin} has been uninstalled by {executor}",
}


def record(
    session: Session,
    event_type: EventType | str,
    executor: str | None,
    *,
    subject: str | None = None,
    job_name: str | None = None,
    job_version: str | None = None,
    **properties: Any,
) -> None:
    session.add(
        AuditLogEvent(
            event_type=str(event_type),
            username_executor=executor,
            username_subject=subject,
            job_name=job_name,
            job_version=job_version,
            properties={k: v for k, v in properties.items() if v is not None},
        )
    )


def record_in(db: Database, event_type: EventType | str, executor: str | None, **kwargs: Any) -> None:
    with db.session() as session:
        record(session, event_type, executor, **kwargs)


def list_events(
    session: Session,
    *,
    job_name: str | None = None,
    job_version: str | None = None,
    related_to: str | None = None,
    limit: int = 100,
) -> list[AuditLogEvent]:
    """Latest first. `job_name` alone filters a family; `related_to` keeps events a user did or was subject of."""
    query = select(AuditLogEvent)
    if job_name:
        query = query.where(AuditLogEvent.job_name == job_name)
    if job_version:
        query = query.where(AuditLogEvent.job_version == job_version)
    if related_to:
        query = query.where(
            or_(AuditLogEvent.username_executor == related_to, AuditLogEvent.username_subject == related_to)
        )
    query = query.order_by(AuditLogEvent.timestamp.desc()).limit(limit)
    return list(session.scalars(query))


def events(
    db: Database,
    *,
    job_name: str | None = None,
    job_version: str | None = None,
    related_to: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """`list_events` in its API shape, in a transaction of its own."""
    with db.session() as session:
        found = list_events(session, job_name=job_name, job_version=job_version, related_to=related_to, limit=limit)
        return [event_to_api(e) for e in found]


def events_for_user(
    db: Database, caller: Caller, *, job_name: str | None, job_version: str | None, related_only: bool, limit: int
) -> list[dict[str, Any]]:
    """`events` as a user asks for them (users only); `related_only` keeps those they did or were subject of."""
    require_user(caller)
    related_to = caller.name if related_only else None
    return events(db, job_name=job_name, job_version=job_version, related_to=related_to, limit=limit)


def explain(event: AuditLogEvent) -> str:
    job = f"{event.job_name} {event.job_version}" if event.job_version else (event.job_name or "")
    owner = f" of user {event.username_subject}" if event.username_subject else ""
    template = _EXPLANATIONS.get(event.event_type)
    props = event.properties or {}
    if template is None:
        details = ", ".join(f"{k}={v}" for k, v in sorted(props.items()))
        target = f" on job {job}" if job else ""
        subject = f" about {event.username_subject}" if event.username_subject else ""
        return f"{event.event_type.replace('_', ' ')}{target}{subject} by {event.username_executor or 'unknown'}" + (
            f" ({details})" if details else ""
        )
    return template.format(
        job=job, owner=owner, executor=event.username_executor or "unknown", plugin=props.get("plugin_name", "?")
    )


def _time_ago(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return f"{max(seconds, 0)} seconds ago"


def event_to_api(event: AuditLogEvent) -> dict[str, Any]:
    moment = event.timestamp if event.timestamp.tzinfo else event.timestamp.replace(tzinfo=UTC)
    return {
        "id": event.id,
        "version": event.version,
        "timestamp": moment.isoformat(),
        "event_type": event.event_type,
        "properties": event.properties or {},
        "username_executor": event.username_executor,
        "username_subject": event.username_subject,
        "job_name": event.job_name,
        "job_version": event.job_version,
        "explanation": explain(event),
        "time_ago": _time_ago(moment),
    }
