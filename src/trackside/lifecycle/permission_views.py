"""Permission rows as people read them, granted and revoked by staff, and the permissions graph.

A grant names its subject (a user, an ESC or a job family), a scope and what it covers (a family,
narrowed to a job version and an endpoint; nothing: every family). The graph has one node per ESC,
job family and user (plus "every family" for grants that name none) and one edge per pair of
subject and family, labelled with the scopes granted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.permissions import Resource, add_grant, normalize_endpoint
from trackside.auth.scopes import Scope, parse_scope
from trackside.auth.subjects import Caller, subject_of
from trackside.errors import InvalidInput, NotFound
from trackside.lifecycle import audit
from trackside.lifecycle.access import Grants, require_staff
from trackside.lifecycle.audit import EventType
from trackside.store.auth_models import AuthResourcePermission, AuthSubject, Esc, User
from trackside.store.database import Database
from trackside.store.models import Job, JobFamily

SUBJECT_TYPES = ("user", "esc", "job_family")
ALL_FAMILIES_NODE = "all-job-families"


@dataclass(frozen=True)
class _Names:
    users: dict[str, str]  # user id -> username
    escs: dict[str, str]  # esc id -> name
    families: dict[str, str]  # family id -> name
    jobs: dict[str, tuple[str, str]]  # job id -> (name, version)

    @classmethod
    def load(cls, session: Session) -> _Names:
        return cls(
            dict(session.execute(select(User.id, User.username)).tuples().all()),
            dict(session.execute(select(Esc.id, Esc.name)).tuples().all()),
            dict(session.execute(select(JobFamily.id, JobFamily.name)).tuples().all()),
            {i: (n, v) for i, n, v in session.execute(select(Job.id, Job.name, Job.version)).tuples().all()},
        )

    def subject(self, subject: AuthSubject) -> tuple[str, str, str]:
        """(type, key, label) of a subject."""
        if subject.user_id is not None:
            name = self.users.get(subject.user_id, "?")
            return "user", name, name
        if subject.esc_id is not None:
            return "esc", subject.esc_id, self.escs.get(subject.esc_id, "?")
        name = self.families.get(subject.job_family_id or "", "?")
        return "job_family", name, name


def list_grants(db: Database, caller: Caller) -> list[dict[str, Any]]:
    require_staff(caller)
    with db.session() as session:
        names = _Names.load(session)
        subjects = {s.id: s for s in session.scalars(select(AuthSubject))}
        out = []
        for row in session.scalars(select(AuthResourcePermission).order_by(AuthResourcePermission.id)):
            subject = subjects.get(row.auth_subject_id)
            if subject is None:
                continue
            kind, key, label = names.subject(subject)
            job = names.jobs.get(row.job_id or "")
            out.append(
                {
                    "id": row.id,
                    "subject_type": kind,
                    "subject": key,
                    "subject_name": label,
                    "scope": row.scope,
                    "job_family": names.families.get(row.job_family_id) if row.job_family_id else None,
                    "job_version": job[1] if job else None,
                    "endpoint": row.endpoint,
                }
            )
        return out


def _subject_id(session: Session, subject_type: str, subject: str) -> tuple[str, str]:
    """The subject row's id, and a display name, of a user (username), ESC (id or name) or family (name)."""
    if subject_type == "user":
        user = session.scalars(select(User).where(User.username == subject)).first()
        if user is None:
            raise InvalidInput(f"subject: no user {subject!r}")
        return subject_of(session, user_id=user.id).id, f"User {user.username}"
    if subject_type == "esc":
        esc = session.get(Esc, subject) or session.scalars(select(Esc).where(Esc.name == subject)).first()
        if esc is None:
            raise InvalidInput(f"subject: no ESC with id or name {subject!r}")
        return subject_of(session, esc_id=esc.id).id, f"ESC {esc.name}"
    if subject_type == "job_family":
        family = session.scalars(select(JobFamily).where(JobFamily.name == subject)).first()
        if family is None:
            raise InvalidInput(f"subject: no job family {subject!r}")
        return subject_of(session, job_family_id=family.id).id, f"Job family {family.name}"
    raise InvalidInput(f"subject_type: choose one of {', '.join(SUBJECT_TYPES)}, got {subject_type!r}")


def grant(
    db: Database,
    caller: Caller,
    subject_type: str,
    subject: str,
    scope: str,
    job_family: str | None,
    job_version: str | None,
    endpoint: str | None,
) -> dict[str, Any]:
    """Give a user, ESC or job family `scope` (on a family, narrowed to a version and endpoint), audited."""
    require_staff(caller)
    with db.session() as session:
        try:
            wanted = parse_scope(scope)
        except InvalidInput as exc:
            raise InvalidInput(f"scope: {exc.message}") from None
        subject_id, display = _subject_id(session, subject_type, subject.strip())
        family_id = job_id = None
        if job_family:
            family = session.scalars(select(JobFamily).where(JobFamily.name == job_family)).first()
            if family is None:
                raise InvalidInput(f"job_family: no job family {job_family!r}")
            family_id = family.id
            if job_version:
                job = session.scalars(select(Job).where(Job.family_id == family.id, Job.version == job_version)).first()
                if job is None:
                    raise InvalidInput(f"job_version: job {job_family} has no version {job_version!r}")
                job_id = job.id
        elif job_version or endpoint:
            raise InvalidInput("job_family: a version or an endpoint narrows a family: name the family too")
        path = normalize_endpoint(endpoint) if endpoint else None
        added = add_grant(session, subject_id, wanted, family_id, job_id, path)
        audit.record(
            session,
            EventType.PERMISSION_GRANTED,
            caller.username,
            job_name=job_family,
            job_version=job_version,
            grantee=display,
            scope=wanted.value,
            endpoint=path,
        )
        return {"granted": added, "subject": display, "scope": wanted.value, "job_family": job_family}


def revoke(db: Database, caller: Caller, permission_id: int) -> dict[str, Any]:
    require_staff(caller)
    with db.session() as session:
        row = session.get(AuthResourcePermission, permission_id)
        if row is None:
            raise NotFound(f"permission {permission_id} not found")
        names = _Names.load(session)
        subject = session.get(AuthSubject, row.auth_subject_id)
        _kind, _key, label = names.subject(subject) if subject is not None else ("", "", "?")
        family = names.families.get(row.job_family_id) if row.job_family_id else None
        job = names.jobs.get(row.job_id or "")
        audit.record(
            session,
            EventType.PERMISSION_REVOKED,
            caller.username,
            job_name=family,
            job_version=job[1] if job else None,
            grantee=label,
            scope=row.scope,
            endpoint=row.endpoint,
        )
        session.delete(row)
        return {"revoked": permission_id}


def graph(db: Database, caller: Caller) -> dict[str, Any]:
    """Nodes and edges; a non-staff caller sees only families it may read, and no other user."""
    with db.session() as session:
        names = _Names.load(session)
        grants = Grants.of(session, caller)
        family_jobs: dict[str, list[str]] = {}
        for job_id, family_id in session.execute(select(Job.id, Job.family_id)).tuples():
            family_jobs.setdefault(family_id, []).append(job_id)
        staff = caller.is_staff or caller.is_internal
        visible_families = {
            fid
            for fid in names.families
            if staff or any(grants.allows(Scope.READ_JOB, Resource(fid, jid)) for jid in family_jobs.get(fid, []))
        }
        nodes: dict[str, dict[str, Any]] = {}
        for fid in visible_families:
            name = names.families[fid]
            count = len(family_jobs.get(fid, []))
            nodes[f"job-family-{name}"] = {
                "id": f"job-family-{name}",
                "type": "job_family",
                "title": name,
                "subtitle": f"{count} version{'s' if count != 1 else ''}",
            }
        edges: dict[tuple[str, str], dict[str, Any]] = {}
        subjects = {s.id: s for s in session.scalars(select(AuthSubject))}
        for row in session.scalars(select(AuthResourcePermission)):
            subject = subjects.get(row.auth_subject_id)
            if subject is None:
                continue
            kind, key, label = names.subject(subject)
            if kind == "user" and not staff and key != caller.name:
                continue
            if row.job_family_id is None:
                target = ALL_FAMILIES_NODE
            elif row.job_family_id in visible_families:
                target = f"job-family-{names.families[row.job_family_id]}"
            else:
                continue
            source = {"user": f"user-{key}", "esc": f"esc-{key}", "job_family": f"job-family-{key}"}[kind]
            if kind == "job_family" and source not in nodes:
                continue  # a family the caller may not read
            nodes.setdefault(source, {"id": source, "type": kind, "title": label, "subtitle": kind.replace("_", " ")})
            if target == ALL_FAMILIES_NODE:
                nodes.setdefault(
                    target,
                    {"id": target, "type": "all", "title": "every job family", "subtitle": "grants on any family"},
                )
            edge = edges.setdefault((source, target), {"from_id": source, "to_id": target, "scopes": []})
            narrowed = row.scope
            if row.job_id:
                narrowed += f" ({names.jobs.get(row.job_id, ('', '?'))[1]}{' ' + row.endpoint if row.endpoint else ''})"
            elif row.endpoint:
                narrowed += f" ({row.endpoint})"
            if narrowed not in edge["scopes"]:
                edge["scopes"].append(narrowed)
        return {"nodes": sorted(nodes.values(), key=lambda n: (n["type"], n["title"])), "edges": list(edges.values())}
