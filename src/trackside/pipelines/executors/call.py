"""`call` steps: a deployed job called through the gateway, with the run owner's permissions.

No container per step: one HTTP request from the scheduler's process (see `CallRunner` for the client) to
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

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from sqlalchemy import select

from trackside.auth.service import AuthService
from trackside.auth.tokens import SubjectType
from trackside.gateway.upstream import UpstreamPool, send_buffered
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


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class CallRunner:
    """Sends call steps' requests: over the gateway's own keep-alive client for an `http://` gateway
    (the common case: the gateway in the same process or the same cluster), over httpx for `https://`.

    The lean client is there because the call is on the per-step hot path: httpx's request and
    connection-pool machinery cost about 1 ms of CPU per call, more than the gateway and the job
    together (measured with `python -m bench --only pipelines`, issue 13's < 5 ms per step)."""

    def __init__(self, tokens: OwnerTokens, timeout: float = 300.0) -> None:
        self.tokens = tokens
        self.timeout = timeout
        self.pub_url = ""
        self._pool = UpstreamPool(connect_timeout=10.0)
        self._client: httpx.AsyncClient | None = None

    async def close(self) -> None:
        self._pool.close()
        if self._client is not None:
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
        token = self.tokens.token(owner)
        headers = {
            **request.headers,
            "Idempotency-Key": f"{request.run_uid}/{request.job}/{request.attempt}",
            "X-Request-Tracing-Id": f"{request.run_uid}-{request.job}-{request.attempt}",
        }
        if token:
            headers["X-Racetrack-Auth"] = token
        body = json.dumps(request.payload).encode() if request.method != "GET" else None
        log = [self.request_log(request)]
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                answer = await self._send(request.method, self.url(request), headers, body)
        except (OSError, ConnectionError, TimeoutError, ValueError, httpx.HTTPError) as exc:
            message = f"calling {request.target_job} {request.version} failed: {exc or type(exc).__name__}"
            return CallOutcome(False, "".join([*log, message, "\n"]), error=message)
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.append(f"HTTP {answer.status} in {elapsed_ms:.1f} ms\n{answer.text[:LOG_BODY_LIMIT]}\n")
        text = "".join(log)
        if not 200 <= answer.status < 300:
            return CallOutcome(False, text, error=_error_text(answer), status_code=answer.status)
        try:
            decoded = json.loads(answer.body)
        except ValueError:
            error = f"HTTP {answer.status}: the answer is not JSON"
            return CallOutcome(False, text, error=error, status_code=answer.status)
        outputs = decoded if isinstance(decoded, dict) else {"result": decoded}
        return CallOutcome(True, text, outputs=outputs, status_code=answer.status)

    async def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> _Answer:
        base = urlsplit(self.pub_url)
        if base.scheme != "http":
            return await self._send_httpx(method, url, headers, body)
        host = base.hostname or ""
        port = base.port or 80
        key = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        # Quoted from the URL as built, not from a parse of it: urllib drops line breaks silently.
        target = quote(url[len(f"{base.scheme}://{base.netloc}") :] or "/", safe=_PATH_SAFE)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {base.netloc}"]
        for name, value in headers.items():
            _check_header(name, value)
            if name.lower() not in _FRAMING:  # this client frames the request; a second length would not
                lines.append(f"{name}: {value}")
        if body is not None:
            if not any(name.lower() == "content-type" for name in headers):
                lines.append("Content-Type: application/json")
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
        response = await send_buffered(self._pool, key, head + (body or b""), head_request=method == "HEAD")
        return _Answer(response.status, b"".join(response.body))

    async def _send_httpx(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> _Answer:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout, connect=10.0))
        if body is not None:
            headers = {**headers, "Content-Type": "application/json"}
        response = await self._client.request(method, url, content=body, headers=headers)
        return _Answer(response.status_code, response.content)


# Characters a request target keeps as they are; anything else (spaces, line breaks, non-ASCII that
# a substituted `${{ params.x }}` brought into the path) is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%?"
_FRAMING = {"host", "content-length", "transfer-encoding", "connection"}
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def _check_header(name: str, value: str) -> None:
    if not _TOKEN.match(name):
        raise ValueError(f"header name {name!r} is not a valid HTTP header name")
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"header {name}: its value has a line break or NUL, which HTTP does not allow")


def _error_text(answer: _Answer) -> str:
    detail = answer.text.strip()
    try:
        body = json.loads(answer.body)
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            detail = body["error"]
    except ValueError:
        pass
    if not detail:
        with contextlib.suppress(ValueError):
            detail = HTTPStatus(answer.status).phrase
    return f"HTTP {answer.status}: {detail[:500]}"
