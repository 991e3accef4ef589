"""The store of async job calls, for the gateways (Racetrack's `/job/async/call`; docs/racetrack-compat.md).

A gateway records a call as it starts it and writes its result when the job answered; whichever
gateway is polled reads it and deletes it once it handed the result out (a result is read once).
Rows older than `RETENTION_S` go whenever a call is recorded, delivered or not (Racetrack: 4 hours).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.errors import AlreadyExists, InvalidInput, NotFound
from trackside.lifecycle.access import session_with_scope
from trackside.lifecycle.job_versions import timestamp
from trackside.store.async_models import AsyncJobCall
from trackside.store.database import Database

RETENTION_S = 4 * 3600
STATUSES = ("ongoing", "completed", "failed")
MAX_BODY_BYTES = 64 * 1024 * 1024


def to_api(call: AsyncJobCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "status": call.status,
        "job_name": call.job_name,
        "job_version": call.job_version,
        "job_path": call.job_path,
        "http_method": call.http_method,
        "started_at": timestamp(call.started_at),
        "ended_at": timestamp(call.ended_at),
        "error": call.error,
        "attempts": call.attempts,
        "gateway": call.gateway,
        "response_status": call.response_status,
        "response_headers": dict(call.response_headers or {}),
        "response_body": base64.b64encode(call.response_body).decode() if call.response_body is not None else None,
    }


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise InvalidInput(f"status: choose one of {', '.join(STATUSES)}, got {status!r}")


def _body(encoded: str | None) -> bytes | None:
    if encoded is None:
        return None
    try:
        body = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise InvalidInput(f"response_body: not base64 ({exc})") from exc
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput(f"response_body: larger than {MAX_BODY_BYTES // (1024 * 1024)} MB")
    return body


def create(session: Session, fields: dict[str, Any]) -> AsyncJobCall:
    _check_status(fields["status"])
    if session.get(AsyncJobCall, fields["id"]) is not None:
        raise AlreadyExists(f"async call {fields['id']} already exists")
    cutoff = datetime.now(UTC) - timedelta(seconds=RETENTION_S)
    session.execute(delete(AsyncJobCall).where(AsyncJobCall.started_at < cutoff))
    call = AsyncJobCall(
        id=fields["id"],
        status=fields["status"],
        job_name=fields["job_name"],
        job_version=fields["job_version"],
        job_path=fields["job_path"],
        http_method=fields["http_method"],
        attempts=fields.get("attempts") or 1,
        gateway=fields["gateway"],
    )
    session.add(call)
    session.flush()
    return call


def get(session: Session, call_id: str) -> AsyncJobCall:
    call = session.get(AsyncJobCall, call_id)
    if call is None:
        raise NotFound(f"async call {call_id} not found")
    return call


def update(session: Session, call_id: str, fields: dict[str, Any]) -> AsyncJobCall:
    """Write a call's status and result (only the fields given)."""
    call = get(session, call_id)
    if "status" in fields:
        _check_status(fields["status"])
        call.status = fields["status"]
        if fields["status"] != "ongoing" and call.ended_at is None:
            call.ended_at = datetime.now(UTC)
    for key in ("error", "attempts", "response_status", "response_headers"):
        if key in fields:
            setattr(call, key, fields[key])
    if "response_body" in fields:
        call.response_body = _body(fields["response_body"])
    return call


def remove(session: Session, call_id: str) -> None:
    session.delete(get(session, call_id))


# -- for the gateways (call_admin_api), each in a transaction of its own -----------------------------


def start(db: Database, caller: Caller, fields: dict[str, Any]) -> dict[str, Any]:
    with session_with_scope(db, caller, Scope.CALL_ADMIN_API) as session:
        return to_api(create(session, fields))


def read(db: Database, caller: Caller, call_id: str) -> dict[str, Any]:
    with session_with_scope(db, caller, Scope.CALL_ADMIN_API) as session:
        return to_api(get(session, call_id))


def change(db: Database, caller: Caller, call_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    with session_with_scope(db, caller, Scope.CALL_ADMIN_API) as session:
        return to_api(update(session, call_id, fields))


def drop(db: Database, caller: Caller, call_id: str) -> None:
    with session_with_scope(db, caller, Scope.CALL_ADMIN_API) as session:
        remove(session, call_id)
