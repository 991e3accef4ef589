"""Calls from one job to another through the gateway, with Racetrack's `call_job(self, ...)` signature.

Racetrack's `call_job(entrypoint, job_name, path, payload, version, method, timeout)` takes the
calling job's instance first, to read the request being served from `entrypoint.request_context`
and forward its tracing id and caller name (headers named by REQUEST_TRACING_HEADER and
CALLER_NAME_HEADER, `X-Request-Tracing-Id` and `X-Caller-Name` by default) with the job's own token
(AUTH_TOKEN) to `{PUB_URL}/job/{job_name}/{version}{path}`. It returns the decoded JSON answer, and
any failure (an error status, a timeout, PUB_URL unset) is a RuntimeError saying which job failed to
call which: `failed to call job "adder latest" by python-chain: ...`.

Trackside's own `trackside_runtime.client.call_job(job_name, ...)` does the same without the
entrypoint argument; both send the request through it.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from ._runtime import client, current_request


class JobCallFailed(RuntimeError):
    """A call to another job failed; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _outgoing_headers(entrypoint: Any) -> dict[str, str]:
    headers: dict[str, str] = dict(client.auth_headers())
    var = getattr(entrypoint, "request_context", None) or current_request.request_context
    try:
        request = var.get()
    except LookupError:  # a ContextVar without default, read outside a request
        request = None
    if request is not None:
        for name in (current_request.tracing_header_name(), current_request.caller_header_name()):
            value = request.headers.get(name)
            if value:  # an empty caller header would stop the gateway from naming the caller
                headers[name] = value
    return headers


def _failure(job_name: str, version: str, exc: BaseException) -> JobCallFailed:
    caller = os.environ.get("JOB_NAME") or "a job"
    detail = str(exc) or type(exc).__name__
    return JobCallFailed(
        f'failed to call job "{job_name} {version}" by {caller}: {detail}', getattr(exc, "status", None)
    )


def call_job(
    entrypoint: Any,
    job_name: str,
    path: str = "/api/v1/perform",
    payload: dict[str, Any] | None = None,
    version: str = "latest",
    method: str = "POST",
    timeout: float | None = 10,
) -> Any:
    """Call `path` of job `job_name` (`version`: exact, `latest` or `1.x`) and return its JSON answer."""
    try:
        url = client.job_url(job_name, version, path)
        headers = _outgoing_headers(entrypoint)
        return client.request_json(url, method, payload, headers, timeout, payload is not None)
    except Exception as exc:
        raise _failure(job_name, version, exc) from exc


async def call_job_coroutine(
    entrypoint: Any,
    job_name: str,
    path: str = "/api/v1/perform",
    payload: dict[str, Any] | None = None,
    version: str = "latest",
    method: str = "POST",
    timeout: float | None = 10,
) -> Any:
    """`call_job` for `async def` job code: the request runs in a thread, the event loop stays free."""
    return await asyncio.to_thread(call_job, entrypoint, job_name, path, payload, version, method, timeout)


# The name Racetrack's python3 job type documents for the coroutine.
call_job_async = call_job_coroutine

_POLL_AGAIN = (202, 408, 504)


def async_job_call(
    entrypoint: Any,
    job_name: str,
    path: str = "/api/v1/perform",
    payload: dict[str, Any] | None = None,
    version: str = "latest",
    method: str = "POST",
    poll_timeout: float = 60,
) -> Any:
    """Call a job through the gateway's async calls (`/async/new/job/...`) and wait for its result.

    For calls longer than a connection may stay open: the gateway stores the call and runs it, and
    this polls `/async/task/{id}/poll` until the result is there.
    """
    try:
        base = client.pub_url()
        if not path.startswith("/"):
            path = "/" + path
        headers = _outgoing_headers(entrypoint)
        started = client.request_json(
            f"{base}/async/new/job/{job_name}/{version}{path}", method, payload, headers, 10, payload is not None
        )
        task_id = started["task_id"] if isinstance(started, dict) else None
        if not task_id:
            raise RuntimeError(f"the gateway's answer has no task_id: {started!r}")
        poll = f"{base}/async/task/{task_id}/poll"
        while True:
            try:
                status, raw = client.send(poll, "GET", None, headers, poll_timeout, False)
            except OSError as exc:  # urllib's URLError too
                if isinstance(exc, TimeoutError) or isinstance(getattr(exc, "reason", None), TimeoutError):
                    continue
                raise
            if status == 200:
                return client.decode(raw)
            if status in _POLL_AGAIN:
                if status == 202:
                    time.sleep(0.2)
                continue
            raise client.JobCallError(poll, status, raw.decode("utf-8", "replace"))
    except Exception as exc:
        raise _failure(job_name, version, exc) from exc
