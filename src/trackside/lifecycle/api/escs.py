"""`/escs`: external service consumers (programs outside the platform that call jobs); staff only.

The work, its checks and its audit are in `trackside.lifecycle.escs`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from trackside.auth.service import AuthService
from trackside.auth.subjects import Caller
from trackside.lifecycle import escs
from trackside.lifecycle.api.bounds import UnixTime
from trackside.lifecycle.api.deps import get_auth, get_caller, get_context
from trackside.lifecycle.api.models import Message
from trackside.lifecycle.wiring import LifecycleContext

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


@router.get("/escs", response_model=list[EscModel])
def list_escs(
    caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> list[dict[str, str]]:
    return escs.list_escs(context.db, caller)


@router.post("/escs", status_code=201, response_model=NewEscAnswer)
def create_esc(
    body: NewEsc,
    caller: Caller = Depends(get_caller),
    auth: AuthService = Depends(get_auth),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, str]:
    return escs.create_esc(context.db, auth, caller, body.name, body.id)


@router.get("/escs/{esc_id}/auth_data", response_model=EscAuthData)
def esc_auth_data(
    esc_id: str,
    caller: Caller = Depends(get_caller),
    auth: AuthService = Depends(get_auth),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    return escs.auth_data(context.db, auth, caller, esc_id)


@router.post("/escs/{esc_id}/auth_token", status_code=201, response_model=TokenModel)
def issue_esc_token(
    esc_id: str,
    body: NewToken,
    caller: Caller = Depends(get_caller),
    auth: AuthService = Depends(get_auth),
    context: LifecycleContext = Depends(get_context),
) -> dict[str, Any]:
    return escs.issue_token(context.db, auth, caller, esc_id, body.expiry_time)


@router.delete("/escs/{esc_id}/auth_token/{token_id}", response_model=Message)
def revoke_esc_token(
    esc_id: str, token_id: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    escs.revoke_token(context.db, caller, esc_id, token_id)
    return {"message": f"token {token_id} revoked"}
