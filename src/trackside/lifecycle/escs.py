"""External service consumers (programs outside the platform that call jobs): staff create them, issue
and revoke their tokens. Every change is audited; every function checks that the caller is staff.

Creating an ESC also issues its first token. More tokens can be issued with an expiry, and any one
revoked; a revoked token stops passing the gateway within `gateway_cache_ttl` seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.service import AuthService, aware
from trackside.auth.subjects import Caller, subject_of
from trackside.auth.tokens import SubjectType
from trackside.errors import InvalidInput, NotFound
from trackside.lifecycle import audit
from trackside.lifecycle.access import require_staff
from trackside.lifecycle.audit import EventType
from trackside.store.auth_models import AuthToken, Esc
from trackside.store.database import Database


def _timestamp(value: datetime | None) -> int | None:
    moment = aware(value)
    return int(moment.timestamp()) if moment else None


def token_to_api(auth: AuthService, row: AuthToken) -> dict[str, Any]:
    return {
        "id": row.id,
        "expiry_time": _timestamp(row.expiry_time),
        "active": row.active,
        "last_use_time": _timestamp(row.last_use_time),
        "create_time": _timestamp(row.create_time),
        "token": auth.token_value(row),
    }


def get_esc(session: Session, esc_id: str) -> Esc:
    esc: Esc | None = session.get(Esc, esc_id)
    if esc is None:
        raise NotFound(f"ESC {esc_id} not found")
    return esc


def list_escs(db: Database, caller: Caller) -> list[dict[str, str]]:
    require_staff(caller)
    with db.session() as session:
        return [{"id": e.id, "name": e.name} for e in session.scalars(select(Esc).order_by(Esc.name))]


def create_esc(db: Database, auth: AuthService, caller: Caller, name: str, esc_id: str | None) -> dict[str, str]:
    """A new ESC (with the id asked for, if any) and its first token."""
    require_staff(caller)
    with db.session() as session:
        if esc_id is not None and session.get(Esc, esc_id) is not None:
            raise InvalidInput(f"id: an ESC with id {esc_id} already exists")
        esc = Esc(name=name) if esc_id is None else Esc(id=esc_id, name=name)
        session.add(esc)
        session.flush()
        subject = subject_of(session, esc_id=esc.id)
        _row, token = auth.issue(session, subject, esc.id, SubjectType.ESC)
        audit.record(session, EventType.ESC_CREATED, caller.username, esc_id=esc.id, esc_name=esc.name)
        return {"id": esc.id, "name": esc.name, "token": token}


def auth_data(db: Database, auth: AuthService, caller: Caller, esc_id: str) -> dict[str, Any]:
    """The ESC with every token it was issued, oldest first."""
    require_staff(caller)
    with db.session() as session:
        esc = get_esc(session, esc_id)
        subject = subject_of(session, esc_id=esc.id)
        rows = session.scalars(
            select(AuthToken).where(AuthToken.auth_subject_id == subject.id).order_by(AuthToken.create_time)
        )
        return {"id": esc.id, "name": esc.name, "tokens": [token_to_api(auth, r) for r in rows]}


def issue_token(
    db: Database, auth: AuthService, caller: Caller, esc_id: str, expiry_time: int | None
) -> dict[str, Any]:
    """Another token of the ESC, expiring at `expiry_time` (unix seconds; None: never)."""
    require_staff(caller)
    expiry = None
    if expiry_time is not None:
        expiry = datetime.fromtimestamp(expiry_time, UTC)
        if expiry <= datetime.now(UTC):
            raise InvalidInput("expiry_time: must be in the future")
    with db.session() as session:
        esc = get_esc(session, esc_id)
        row, _token = auth.issue(session, subject_of(session, esc_id=esc.id), esc.id, SubjectType.ESC, expiry)
        audit.record(
            session,
            EventType.TOKEN_ISSUED,
            caller.username,
            esc_id=esc.id,
            token_id=row.id,
            expiry_time=expiry_time,
        )
        return token_to_api(auth, row)


def revoke_token(db: Database, caller: Caller, esc_id: str, token_id: str) -> None:
    require_staff(caller)
    with db.session() as session:
        esc = get_esc(session, esc_id)
        subject = subject_of(session, esc_id=esc.id)
        row = session.get(AuthToken, token_id)
        if row is None or row.auth_subject_id != subject.id:
            raise NotFound(f"token {token_id} of ESC {esc_id} not found")
        row.active = False
        audit.record(session, EventType.TOKEN_REVOKED, caller.username, esc_id=esc.id, token_id=token_id)
