"""`call` steps: a deployed job called through the gateway, with the run owner's permissions.

No container per step: one HTTP request from the scheduler's process to
`{pub_url}/job/{job}/{version}{path}`, carrying a token of the run's owner (so the gateway applies
exactly the permissions the owner has: `call_job` on that job and endpoint), an `Idempotency-Key:
{run}/{job}/{attempt}` header (a call resent after a crash carries the same key) and
`X-Request-Tracing-Id`. A 2xx JSON answer becomes the step's outputs (an object as it is, any other
value as `{"result": value}`); anything else fails the attempt with the answer's error.

The step's log (the request and the answer) is kept in memory and recorded with the attempt, not
written to a file first: creating the attempt's directory and file was a measured part of the
per-step overhead, and a call's log is complete only when the answer is in anyway.

The owner's token is not stored with the run: the run records who its owner is, and `OwnerTokens`
gets a live token of that subject when a call needs one (a user's or an ESC's current token, a job
family's token, or a new internal token with the same scopes). A revoked owner's runs stop calling.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from trackside.auth.service import AuthService
from trackside.auth.tokens import SubjectType
from trackside.store.auth_models import AuthSubject
from trackside.store.database import Database

LOG_BODY_LIMIT = 64 * 1024
TOKEN_TTL = 30.0


@dataclass(frozen=True)
class CallRequest:
    run_uid: str
    job: str
    attempt: int
    target_job: str
    version: str
    path: str
    method: str
    payload: Any
    headers: dict[str, str]


@dataclass(frozen=True)
class CallOutcome:
    ok: bool
    log: str
    outputs: dict[str, Any] | None = None
    error: str | None = None
    status_code: int | None = None


class OwnerTokens:
    """A live token for a run's owner, asked of the auth service and kept for a few seconds."""

    def __init__(self, auth: AuthService, db: Database) -> None:
        self.auth = auth
        self.db = db
        self._cache: dict[str, tuple[float, str | None]] = {}

    def token(self, owner: dict[str, Any]) -> str | None:
        key = json.dumps(owner, sort_keys=True)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < TOKEN_TTL:
            return cached[1]
        token = self._lookup(owner)
        self._cache[key] = (now, token)
        return token

    def _lookup(self, owner: dict[str, Any]) -> str | None:
        kind = owner.get("type")
        if kind == SubjectType.INTERNAL.value:
            return self.auth.internal_token(str(owner.get("name") or "pipelines"), owner.get("scopes"))
        subject_id = owner.get("subject_id")
        if not subject_id:
            return None
        with self.db.session() as session:
            subject = session.scalars(select(AuthSubject).where(AuthSubject.id == subject_id)).first()
            if subject is None:
                return None
            return self.auth.live_token(session, subject)


class CallRunner:
    def __init__(self, tokens: OwnerTokens, timeout: float = 300.0) -> None:
        self.tokens = tokens
        self.pub_url = ""
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0))

    async def close(self) -> None:
        await self._client.aclose()

    def url(self, request: CallRequest) -> str:
        return f"{self.pub_url.rstrip('/')}/job/{request.target_job}/{request.version}{request.path}"

    def request_log(self, request: CallRequest) -> str:
        """The log's first lines: what is called, and with what."""
        text = f"{request.method} {self.url(request)}\n"
        if request.method != "GET":
            text += f"payload: {json.dumps(request.payload)[:LOG_BODY_LIMIT]}\n"
        return text

    async def call(self, request: CallRequest, owner: dict[str, Any]) -> CallOutcome:
        url = self.url(request)
        token = self.tokens.token(owner)
        headers = {
            **request.headers,
            "Idempotency-Key": f"{request.run_uid}/{request.job}/{request.attempt}",
            "X-Request-Tracing-Id": f"{request.run_uid}-{request.job}-{request.attempt}",
        }
        if token:
            headers["X-Racetrack-Auth"] = token
        log = [self.request_log(request)]
        started = time.perf_counter()
        try:
            response = await self._client.request(
                request.method,
                url,
                json=request.payload if request.method != "GET" else None,
                headers=headers,
            )
        except httpx.HTTPError as exc:
            message = f"calling {request.target_job} {request.version} failed: {exc or type(exc).__name__}"
            return CallOutcome(False, "".join([*log, message, "\n"]), error=message)
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.append(f"HTTP {response.status_code} in {elapsed_ms:.1f} ms\n{response.text[:LOG_BODY_LIMIT]}\n")
        text = "".join(log)
        if not response.is_success:
            return CallOutcome(False, text, error=_error_text(response), status_code=response.status_code)
        try:
            answer = response.json()
        except ValueError:
            error = f"HTTP {response.status_code}: the answer is not JSON"
            return CallOutcome(False, text, error=error, status_code=response.status_code)
        outputs = answer if isinstance(answer, dict) else {"result": answer}
        return CallOutcome(True, text, outputs=outputs, status_code=response.status_code)


def _error_text(response: httpx.Response) -> str:
    detail = response.text.strip()
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            detail = body["error"]
    except ValueError:
        pass
    return f"HTTP {response.status_code}: {detail[:500] or response.reason_phrase}"
