"""`/job/async/call`: where gateways keep async job calls and their results (scope call_admin_api)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from trackside.auth.subjects import Caller
from trackside.lifecycle import async_calls
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()


class AsyncCallStart(BaseModel):
    id: str = Field(min_length=1, max_length=36)
    status: str = "ongoing"
    job_name: str = Field(min_length=1, max_length=128)
    job_version: str = Field(min_length=1, max_length=128)
    job_path: str = Field(max_length=65536)
    http_method: str = Field(min_length=1, max_length=16)
    attempts: int = Field(1, ge=1)
    gateway: str = Field(min_length=1, max_length=256, description="base URL of the gateway running it")


class AsyncCallUpdate(BaseModel):
    status: str | None = None
    error: str | None = None
    attempts: int | None = Field(None, ge=1)
    response_status: int | None = Field(None, ge=100, le=999)
    response_headers: dict[str, str] | None = None
    response_body: str | None = Field(None, description="base64")


class AsyncCall(BaseModel):
    id: str
    status: str
    job_name: str
    job_version: str
    job_path: str
    http_method: str
    started_at: int | None
    ended_at: int | None
    error: str | None
    attempts: int
    gateway: str
    response_status: int | None
    response_headers: dict[str, str]
    response_body: str | None = Field(None, description="base64")


def _answer(data: dict[str, Any]) -> AsyncCall:
    return AsyncCall.model_validate(data)


@router.post("/job/async/call", status_code=201)
def create_async_call(
    body: AsyncCallStart, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> AsyncCall:
    return _answer(async_calls.start(context.db, caller, body.model_dump()))


@router.get("/job/async/call/{call_id}")
def get_async_call(
    call_id: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> AsyncCall:
    return _answer(async_calls.read(context.db, caller, call_id))


@router.put("/job/async/call/{call_id}")
def update_async_call(
    call_id: str,
    body: AsyncCallUpdate,
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> AsyncCall:
    return _answer(async_calls.change(context.db, caller, call_id, body.model_dump(exclude_unset=True)))


@router.delete("/job/async/call/{call_id}")
def delete_async_call(
    call_id: str, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> dict[str, str]:
    async_calls.drop(context.db, caller, call_id)
    return {"id": call_id}
