"""A small synchronous client of the lifecycle REST API (`{remote}/api/v1`), used by the CLI.

Every failure becomes a `TracksideError` whose message is fit for one line on a terminal: API
errors carry the body's `error` field (Racetrack's `{"error", "type"}` shape) and connection
problems name the URL that could not be reached, so the CLI never shows a traceback for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from trackside.errors import TracksideError

AUTH_HEADER = "X-Racetrack-Auth"
API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class ApiError(TracksideError):
    """The API answered with an error status; `message` is its `error` field."""

    def __init__(self, message: str, status_code: int, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type


class ApiUnreachable(TracksideError):
    """No HTTP answer at all: refused connection, DNS failure, timeout."""

    status_code = 503


def error_from_response(response: httpx.Response) -> ApiError:
    """Turn an error response into an ApiError with the most useful one-line message."""
    error_type: str | None = None
    message = ""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = None
    if isinstance(body, dict):
        error_type = body.get("type") if isinstance(body.get("type"), str) else None
        raw = body.get("error", body.get("detail"))
        if isinstance(raw, str):
            message = raw
        elif raw is not None:
            message = json.dumps(raw)
    if not message:
        text = response.text.strip()
        snippet = text.splitlines()[0][:200] if text else response.reason_phrase
        message = f"HTTP {response.status_code} from {response.request.url}: {snippet}"
    return ApiError(message, response.status_code, error_type)


def unreachable(url: str, exc: httpx.HTTPError) -> ApiUnreachable:
    reason = str(exc) or type(exc).__name__
    return ApiUnreachable(f"cannot reach the Trackside API at {url}: {reason}")


def job_path(name: str, version: str) -> str:
    return f"/job/{quote(name, safe='')}/{quote(version, safe='')}"


class LifecycleClient:
    """Calls the lifecycle API of one remote (`lifecycle_url` ends with `/lifecycle`)."""

    def __init__(
        self,
        lifecycle_url: str,
        token: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.lifecycle_url = lifecycle_url.rstrip("/")
        self.api_url = self.lifecycle_url + API_PREFIX
        self.token = token
        headers = {AUTH_HEADER: token} if token else {}
        self._http = httpx.Client(base_url=self.api_url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LifecycleClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def auth_headers(self) -> dict[str, str]:
        return {AUTH_HEADER: self.token} if self.token else {}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request to `{api_url}{path}`; return the decoded JSON body (None when empty)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise unreachable(self.lifecycle_url, exc) from None
        if response.is_error:
            raise error_from_response(response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError(
                f"the API at {response.request.url} answered with something that is not JSON "
                f"(is {self.lifecycle_url} a Trackside lifecycle URL?)",
                response.status_code,
            ) from None

    def info(self) -> dict[str, Any]:
        return dict(self.request("GET", "/info"))

    def deploy(self, body: dict[str, Any]) -> str:
        """Start a deployment; returns its id (the work goes on in the background on the server)."""
        answer = self.request("POST", "/deploy", json=body)
        if not isinstance(answer, dict) or "id" not in answer:
            raise ApiError(f"unexpected answer to POST /deploy: {answer!r}", 500)
        return str(answer["id"])

    def get_deployment(self, deployment_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/deploy/{quote(deployment_id, safe='')}"))

    def list_jobs(self) -> list[dict[str, Any]]:
        return list(self.request("GET", "/job") or [])

    def get_job(self, name: str, version: str) -> dict[str, Any]:
        return dict(self.request("GET", job_path(name, version)))

    def delete_job(self, name: str, version: str) -> None:
        self.request("DELETE", job_path(name, version))

    def redeploy_job(self, name: str, version: str) -> Any:
        # Redeploy is synchronous on the server (a rebuild): allow it the time a build takes.
        timeout = httpx.Timeout(3600.0, connect=10.0)
        return self.request("POST", job_path(name, version) + "/redeploy", timeout=timeout)

    def job_logs(self, name: str, version: str, tail: int) -> str:
        answer = self.request("GET", job_path(name, version) + "/logs", params={"tail": tail})
        return str((answer or {}).get("logs", ""))

    def build_logs(self, name: str, version: str, tail: int) -> str:
        answer = self.request("GET", job_path(name, version) + "/build-logs", params={"tail": tail})
        return str((answer or {}).get("logs", ""))

    @contextmanager
    def stream_logs(self, name: str, version: str, tail: int) -> Iterator[Iterator[str]]:
        """Follow a job's logs: yields an iterator of log lines (SSE `data:` events or plain lines)."""
        path = job_path(name, version) + "/logs/stream"
        try:
            with self._http.stream(
                "GET", path, params={"tail": tail}, timeout=httpx.Timeout(None, connect=10.0)
            ) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response)
                lines = response.iter_lines()
                if response.headers.get("content-type", "").startswith("text/event-stream"):
                    yield iter_sse_data(lines)
                else:
                    yield lines
        except httpx.HTTPError as exc:
            raise unreachable(self.lifecycle_url, exc) from None


def iter_sse_data(lines: Iterator[str]) -> Iterator[str]:
    """The lines carried by server-sent events' `data:` fields; comments and other fields are skipped.

    A multi-line event (several `data:` fields) yields each of its lines, which is what a log
    follower wants to print.
    """
    for line in lines:
        if not line.startswith("data"):
            continue
        field_name, _, value = line.partition(":")
        if field_name != "data":
            continue
        yield value[1:] if value.startswith(" ") else value
