"""`/escs`: external service consumers (programs outside the platform that call jobs); staff only.

Creating an ESC also issues its first token. More tokens can be issued with an expiry, and any one
revoked; a revoked token stops passing the gateway within `gateway_cache_ttl` seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select

from trackside.auth.service import AuthService, aware
from trackside.auth.subjects import Caller, subject_of
from trackside.auth.tokens import SubjectType
from trackside.errors import InvalidInput, NotFound
from trackside.lifecycle import audit
from trackside.lifecycle.access import require_staff
from trackside.lifecycle.api.bounds import UnixTime
from trackside.lifecycle.api.deps import get_auth, get_caller, get_context
from trackside.lifecycle.api.models import Message
from trackside.lifecycle.audit import EventType
from trackside.lifecycle.context import LifecycleContext
from trackside.store.auth_models import AuthToken, Esc

router = APIRouter()


class NewEsc(BaseModel):
    name: str = Field(min_length=1, max_length=256)
    id: str | None = Field(default=None, max_length=36)


class NewToken(BaseModel):
    expiry_time: UnixTime | None = None  # None: never expires


class EscModel(BaseModel):
    id: str
    name: str


class NewEscAnswer(EscModel):
    token: str


class TokenModel(BaseModel):
    id: str
    expiry_time: int | None = Field(description="unix seconds; null: never expires")
    active: bool
    last_use_time: int | None
    create_time: int | None
    token: str


class EscAuthData(EscModel):
    tokens: list[TokenModel]


def _timestamp(value: datetime | None) -> int | None:
    moment = aware(value)
    return int(moment.timestamp()) if moment else None


def token_to_api(auth: AuthService, row: AuthToken, *, with_value: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": row.id,
        "expiry_time": _timestamp(row.expiry_time),
        "active": row.active,
        "last_use_time": _timestamp(row.last_use_time),
        "create_time": _timestamp(row.create_time),
    }
    if with_value:
        data["token"] = auth.token_value(row)
    return data


def get_esc(session: Any, esc_id: str) -> Esc:
    esc: Esc | None = session.get(Esc, esc_id)
    if esc is None:
        raise NotFound(f"ESC {esc_id} not found")
    return esc


@router.get("/escs", response_model=list[EscModel])
def list_escs(
    caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> list[dict[str, str]]:
    require_staff(caller)
    with context.db.session() as session:
        return [{"id": e.id, "name": e.name} for e in session.scalars(select(Esc).order_by(Esc.name))]


@router.post("/escs", status_code=201, response_model=NewEscAnswer)
def create_esc(
    body: NewEsc,
    caller: Caller = Depends(get_caller),
    auth: AuthService = Depends(get_auth),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    require_staff(caller)
    with context.db.session() as session:
        if body.id is not None and session.get(Esc, body.id) is not None:
            raise InvalidInput(f"id: an ESC with id {body.id} already exists")
        esc = Esc(name=body.name) if body.id is None else Esc(id=body.id, name=body.name)
        session.add(esc)
        session.flush()
        subject = subject_of(session, esc_id=esc.id)
        _row, token = auth.issue(session, subject, esc.id, SubjectType.ESC)
        audit.record(session, EventType.ESC_CREATED, caller.username, esc_id=esc.id, esc_name=esc.name)
        return {"id": esc.id, "name": esc.name, "token": token}


@router.get("/escs/{esc_id}/auth_data", response_model=EscAuthData)
def esc_auth_data(
    esc_id: str,
    caller: Caller = Depends(get_caller),
    auth: AuthService = Depends(get_auth),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    require_staff(caller)
    with context.db.session() as session:
        esc = get_esc(session, esc_id)
        subject = subject_of(session, esc_id=esc.id)
        rows = session.scalars(
            select(AuthToken).where(AuthToken.auth_subject_id == subject.id).order_by(AuthToken.create_time)
        )
        return {"id": esc.id, "name": esc.name, "tokens": [token_to_api(auth, r, with_value=True) for r in rows]}


@router.post("/escs/{esc_id}/auth_token", status_code=201, response_model=TokenModel)
def issue_esc_token(
    esc_id: str,
    body: NewToken,
    caller: Caller = Depends(get_caller),
    auth: AuthService = Depends(get_auth),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    require_staff(caller)
    expiry = None
    if body.expiry_time is not None:
        expiry = datetime.fromtimestamp(body.expiry_time, UTC)
        if expiry <= datetime.now(UTC):
            raise InvalidInput("expiry_time: must be in the future")
    with context.db.session() as session:
        esc = get_esc(session, esc_id)
        row, _token = auth.issue(session, subject_of(session, esc_id=esc.id), esc.id, SubjectType.ESC, expiry)
        audit.record(
            session,
            EventType.TOKEN_ISSUED,
            caller.username,
            esc_id=esc.id,
            token_id=row.id,
            expiry_time=body.expiry_time,
        )
        return token_to_api(auth, row, with_value=True)


@router.delete("/escs/{esc_id}/auth_token/{token_id}", response_model=Message)
def revoke_esc_token(
    esc_id: str, token_id: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    require_staff(caller)
    with context.db.session() as session:
        esc = get_esc(session, esc_id)
        subject = subject_of(session, esc_id=esc.id)
        row = session.get(AuthToken, token_id)
        if row is None or row.auth_subject_id != subject.id:
            raise NotFound(f"token {token_id} of ESC {esc_id} not found")
        row.active = False
        audit.record(session, EventType.TOKEN_REVOKED, caller.username, esc_id=esc.id, token_id=token_id)
    return {"message": f"token {token_id} revoked"}
