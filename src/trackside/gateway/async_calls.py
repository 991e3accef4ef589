"""Async job calls, as Racetrack's pub serves them (docs/racetrack-compat.md, "Lifecycle and client").

- `ANY /pub/async/new/job/NAME/VERSION/PATH` checks the call as a sync call is checked (the caller's
  token, `call_job` on that job and endpoint: a refusal is the same 401/403/404 at once), records it
  in the platform's store through the lifecycle (`/job/async/call`, the gateway's internal token),
  answers **201** `{task_id, status}` and calls the job in the background.
- The background call goes through this very gateway, `/pub/job/NAME/VERSION/PATH` with the headers
  and token the caller sent, so it passes the same checks, routing and caller identity as a sync call.
  The token stays in this process's memory; it is never stored.
- `GET /pub/async/task/ID/poll` waits up to `POLL_WAIT_S` for the result: the job's own status,
  content type and body when it answered; 500 with what went wrong when the call failed; 408 while it
  still runs; 404 for an unknown task. A result is handed out once (its record is deleted then), by
  any gateway of the platform: results are in the store, so they outlive a gateway restart. A call
  that was running in a gateway that restarted is reported failed. `/status` answers `{task_id,
  status}` without waiting; `/poll/local` and `/status/local` only know this gateway's own calls.
- As in Racetrack, poll and status check no token: a task id is 122 random bits, known only to the
  caller that started the call.

None of this is on the sync path: `/pub/async/` is not a job path, so a sync call never looks here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from trackside.gateway.paths import PathRefused, parse_job_path
from trackside.gateway.resolver import RouteError
from trackside.gateway.tokens import extract_token

if TYPE_CHECKING:
    from trackside.config import Settings

log = logging.getLogger(__name__)

PREFIX = "/pub/async/"
POLL_WAIT_S = 30.0
CALL_TIMEOUT_S = 120 * 60.0  # Racetrack's client timeout for an async call
MAX_BODY_BYTES = 16 * 1024 * 1024
KEEP_LOCAL_S = CALL_TIMEOUT_S + 300


class Exchange(Protocol):
    """What the gateway knows of one request (`trackside.gateway.server._Exchange`)."""

    method: bytes
    path: str
    query: bytes
    watched: dict[bytes, bytes]
    fwd: list[bytes]
    request_id: bytes


class Connection(Protocol):
    """The client connection a request came on (`trackside.gateway.server._ClientConnection`)."""

    @property
    def server(self) -> Any: ...

    async def whole_body(self, ex: Any, limit: int) -> bytes | None: ...

    def respond(self, ex: Any, status: int, body: bytes, content_type: bytes) -> None: ...

    def respond_json(self, ex: Any, status: int, payload: dict[str, Any]) -> None: ...


@dataclass
class Result:
    status: str  # completed | failed
    response_status: int | None = None
    content_type: str | None = None
    body: bytes = b""
    error: str | None = None


class AsyncCalls:
    def __init__(self, lifecycle_url: str, token: str, *, poll_wait: float = POLL_WAIT_S) -> None:
        self.store_url = lifecycle_url.rstrip("/") + "/api/v1/job/async/call"
        self.token = token
        self.poll_wait = poll_wait
        self.base_url = ""  # this gateway's own URL, set once it listens
        self.instance = uuid.uuid4().hex[:12]
        self._local: dict[str, asyncio.Future[Result]] = {}
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def from_settings(cls, settings: Settings, lifecycle_url: str) -> AsyncCalls:
        from trackside.auth.keys import load_auth_key
        from trackside.auth.tokens import SubjectType, encode_token

        token = encode_token(load_auth_key(settings), "gateway", SubjectType.INTERNAL, ["call_admin_api"])
        return cls(lifecycle_url, token)

    def bind(self, base_url: str) -> None:
        """This gateway listens at `base_url` (the background calls go there)."""
        self.base_url = base_url.rstrip("/")

    @property
    def owner(self) -> str:
        """How a record names the gateway process running its call."""
        return f"{self.base_url}#{self.instance}"

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(CALL_TIMEOUT_S, connect=10.0))
        return self._client

    async def aclose(self) -> None:
        for future in self._local.values():
            future.cancel()
        if self._client is not None:
            await self._client.aclose()

    # -- dispatch ---------------------------------------------------------------------------------

    async def serve(self, conn: Connection, ex: Exchange) -> None:
        try:
            await self._serve(conn, ex)
        except Exception as exc:  # a bug here must not hang the client
            log.exception("async call %s failed", ex.path)
            conn.respond_json(ex, 500, {"error": f"async call error: {type(exc).__name__}: {exc}"})

    async def _serve(self, conn: Connection, ex: Exchange) -> None:
        rest = ex.path[len(PREFIX) :]
        if rest.startswith("new/"):
            await self._start(conn, ex, "/pub/" + rest[4:])
            return
        parts = rest.split("/")
        if len(parts) in (3, 4) and parts[0] == "task":
            task_id, action = parts[1], "/".join(parts[2:])
            if action in ("poll", "poll/local"):
                await self._poll(conn, ex, task_id, local_only=action == "poll/local")
                return
            if action in ("status", "status/local"):
                await self._status(conn, ex, task_id, local_only=action == "status/local")
                return
        conn.respond_json(ex, 404, {"error": f"not found: {ex.path}"})

    # -- starting ---------------------------------------------------------------------------------

    async def _start(self, conn: Connection, ex: Exchange, job_path: str) -> None:
        try:
            target = parse_job_path(job_path)
        except PathRefused as exc:
            conn.respond_json(ex, exc.status_code, {"error": exc.message})
            return
        body = await conn.whole_body(ex, MAX_BODY_BYTES)
        if body is None:
            conn.respond_json(ex, 413, {"error": f"an async call's body is limited to {MAX_BODY_BYTES} bytes"})
            return
        token = extract_token(ex.watched)
        try:
            route = await conn.server.resolver.resolve(target.name, target.version, target.path or "/", token)
        except RouteError as exc:
            conn.respond_json(ex, exc.status_code, {"error": exc.message})
            return
        task_id = str(uuid.uuid4())
        record = {
            "id": task_id,
            "status": "ongoing",
            "job_name": target.name,
            "job_version": route.resolved_version,
            "job_path": target.path or "/",
            "http_method": ex.method.decode("latin-1"),
            "gateway": self.owner,
        }
        try:
            stored = await self._store("POST", "", record)
            reason = "" if stored.status_code == 201 else f"{stored.status_code} {stored.text}"
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
        if reason:
            conn.respond_json(ex, 503, {"error": f"async calls can't be recorded now: {reason}"})
            return
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._local[task_id] = future
        asyncio.get_running_loop().call_later(KEEP_LOCAL_S, self._local.pop, task_id, None)
        url = f"{self.base_url}/pub/job/{target.name}/{route.resolved_version}{target.path}"
        headers = _headers(ex, token)
        conn.server._spawn(self._run(task_id, future, ex.method.decode("latin-1"), url, ex.query, headers, body))
        conn.respond_json(ex, 201, {"task_id": task_id, "status": "ongoing"})

    async def _run(
        self,
        task_id: str,
        future: asyncio.Future[Result],
        method: str,
        url: str,
        query: bytes,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> None:
        try:
            response = await self.client.request(
                method, url + query.decode("latin-1"), headers=headers, content=body or None
            )
            result = Result("completed", response.status_code, response.headers.get("content-type"), response.content)
        except httpx.HTTPError as exc:
            result = Result("failed", error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        fields: dict[str, Any] = {"status": result.status, "error": result.error}
        if result.response_status is not None:
            fields.update(
                response_status=result.response_status,
                response_headers={"content-type": result.content_type} if result.content_type else {},
                response_body=base64.b64encode(result.body).decode(),
            )
        for attempt in range(5):  # the result must reach the store: other gateways may be polled
            try:
                stored = await self._store("PUT", f"/{task_id}", fields)
                if stored.status_code in (200, 404):
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5 * (attempt + 1))
        else:
            log.error("async call %s: its result could not be stored; only this gateway can hand it out", task_id)
        if not future.done():
            future.set_result(result)

    # -- results ----------------------------------------------------------------------------------

    async def _poll(self, conn: Connection, ex: Exchange, task_id: str, local_only: bool) -> None:
        future = self._local.get(task_id)
        if future is not None:
            try:
                result = await asyncio.wait_for(asyncio.shield(future), self.poll_wait)
            except TimeoutError:
                conn.respond_json(ex, 408, {"error": "Time-out: the call is still running", "task_id": task_id})
                return
            if self._local.pop(task_id, None) is None:  # another poll took it meanwhile
                conn.respond_json(ex, 404, _unknown(task_id))
                return
            conn.server._spawn(self._forget(task_id))
            self._deliver(conn, ex, task_id, result, None)
            return
        if local_only:
            conn.respond_json(ex, 404, _unknown(task_id))
            return
        deadline = time.monotonic() + self.poll_wait
        while True:
            record = await self._record(task_id)
            if record is None:
                conn.respond_json(ex, 404, _unknown(task_id))
                return
            if record["status"] == "ongoing" and self._orphaned(record):
                record = await self._fail_orphan(task_id, record)
            if record["status"] != "ongoing":
                await self._forget(task_id)
                self._deliver(conn, ex, task_id, _result_of(record), record)
                return
            if time.monotonic() >= deadline:
                conn.respond_json(ex, 408, {"error": "Time-out: the call is still running", "task_id": task_id})
                return
            await asyncio.sleep(0.5)

    def _deliver(
        self, conn: Connection, ex: Exchange, task_id: str, result: Result, record: dict[str, Any] | None
    ) -> None:
        if result.status == "completed" and result.response_status is not None:
            content_type = (result.content_type or "application/octet-stream").encode("latin-1", "replace")
            conn.respond(ex, result.response_status, result.body, content_type)
            return
        payload: dict[str, Any] = {"task_id": task_id, "status": "failed", "error": result.error}
        if record is not None:
            payload.update(
                job_name=record["job_name"],
                job_version=record["job_version"],
                job_path=record["job_path"],
                http_method=record["http_method"],
                started_at=record["started_at"],
                ended_at=record["ended_at"],
                attempts=record["attempts"],
            )
        conn.respond_json(ex, 500, payload)

    async def _status(self, conn: Connection, ex: Exchange, task_id: str, local_only: bool) -> None:
        future = self._local.get(task_id)
        if future is not None:
            status = future.result().status if future.done() else "ongoing"
            conn.respond_json(ex, 200, {"task_id": task_id, "status": status})
            return
        record = None if local_only else await self._record(task_id)
        if record is None:
            conn.respond_json(ex, 404, _unknown(task_id))
            return
        if record["status"] == "ongoing" and self._orphaned(record):
            record = await self._fail_orphan(task_id, record)
        conn.respond_json(ex, 200, {"task_id": task_id, "status": record["status"]})

    def _orphaned(self, record: dict[str, Any]) -> bool:
        """An ongoing call no gateway runs any more: one this gateway ran before it restarted (its URL,
        another process), or one older than any call may run."""
        url, _, instance = str(record.get("gateway") or "").partition("#")
        if url == self.base_url and instance != self.instance:
            return True
        started = record.get("started_at") or 0
        return time.time() - started > KEEP_LOCAL_S

    async def _fail_orphan(self, task_id: str, record: dict[str, Any]) -> dict[str, Any]:
        error = "the gateway running the call stopped before the job answered; call it again"
        with contextlib.suppress(httpx.HTTPError):
            await self._store("PUT", f"/{task_id}", {"status": "failed", "error": error})
        return {**record, "status": "failed", "error": error}

    # -- the store, through the lifecycle -----------------------------------------------------------

    async def _store(self, method: str, suffix: str, payload: dict[str, Any] | None = None) -> httpx.Response:
        return await self.client.request(
            method,
            self.store_url + suffix,
            json=payload,
            headers={"X-Racetrack-Auth": self.token},
            timeout=30,
        )

    async def _record(self, task_id: str) -> dict[str, Any] | None:
        response = await self._store("GET", f"/{task_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    async def _forget(self, task_id: str) -> None:
        """The result was handed out: it is read once."""
        try:
            await self._store("DELETE", f"/{task_id}")
        except httpx.HTTPError:
            log.warning("async call %s: its delivered result could not be deleted", task_id)


def _unknown(task_id: str) -> dict[str, Any]:
    return {"error": f"async task {task_id} not found (unknown, expired, or its result was already read)"}


def _result_of(record: dict[str, Any]) -> Result:
    body = record.get("response_body")
    return Result(
        status=record["status"],
        response_status=record.get("response_status"),
        content_type=(record.get("response_headers") or {}).get("content-type"),
        body=base64.b64decode(body) if body else b"",
        error=record.get("error"),
    )


def _headers(ex: Exchange, token: str | None) -> list[tuple[str, str]]:
    """The caller's headers as the gateway would forward them, with its token and tracing id."""
    fwd = ex.fwd
    headers = [
        (fwd[i].decode("latin-1"), fwd[i + 2].decode("latin-1"))
        for i in range(0, len(fwd) - 3, 4)
        if fwd[i].lower() not in (b"content-length", b"transfer-encoding")
    ]
    if token:
        headers.append(("X-Racetrack-Auth", token))
    headers.append(("X-Request-Tracing-Id", ex.request_id.decode("latin-1")))
    return headers
