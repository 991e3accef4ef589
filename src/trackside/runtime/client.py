"""`call_job`: call another job through the gateway, from inside a job (stdlib only).

`send` and `request_json` are the plain HTTP underneath, shared with the `racetrack_job_wrapper`
compatibility package (Racetrack's `call_job(self, ...)` signature).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from .current_request import current_headers


class JobCallError(RuntimeError):
    """The called job (or the gateway) answered with an error status."""

    def __init__(self, url: str, status: int, body: str) -> None:
        super().__init__(f"calling {url} failed with HTTP {status}: {body[:500]}")
        self.url = url
        self.status = status
        self.body = body


def pub_url() -> str:
    """The gateway's base URL for job-to-job calls (`PUB_URL`, e.g. `http://host:7005/pub`)."""
    url = os.environ.get("PUB_URL", "").rstrip("/")
    if not url:
        raise RuntimeError("PUB_URL is not set: call_job needs the gateway's address")
    return url


def job_url(job_name: str, version: str, path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    return f"{pub_url()}/job/{quote(job_name)}/{quote(version)}{path}"


def auth_headers() -> dict[str, str]:
    """This job's own token (its family's), as the gateway expects it."""
    token = os.environ.get("AUTH_TOKEN", "")
    return {"X-Racetrack-Auth": token} if token else {}


def send(
    url: str, method: str, payload: Any, headers: dict[str, str], timeout: float | None, send_body: bool
) -> tuple[int, bytes]:
    """One HTTP request; (status, body) whatever the status. `send_body` sends `payload` as JSON."""
    headers = {"Accept": "application/json", **headers}
    data = None
    if send_body:
        data = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=headers, method=method.upper())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), bytes(exc.read())


def decode(raw: bytes) -> Any:
    """A JSON answer, or its text when it isn't JSON; None for an empty body."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def request_json(
    url: str, method: str, payload: Any, headers: dict[str, str], timeout: float | None, send_body: bool
) -> Any:
    """`send`, then the decoded answer; JobCallError for a status of 400 or more."""
    status, raw = send(url, method, payload, headers, timeout, send_body)
    if status >= 400:
        raise JobCallError(url, status, raw.decode("utf-8", "replace"))
    return decode(raw)


def call_job(
    job_name: str,
    path: str = "/api/v1/perform",
    payload: Any | None = None,
    version: str = "latest",
    method: str = "POST",
    timeout: float = 10,
) -> Any:
    """Call `{PUB_URL}/job/{job_name}/{version}{path}` with this job's token; return the JSON answer.

    The current request's tracing id and caller name are forwarded, so one trace spans jobs.
    """
    url = job_url(job_name, version, path)
    headers = {**auth_headers(), **current_headers()}
    send_body = payload is not None or method.upper() in ("POST", "PUT", "PATCH")
    return request_json(url, method, payload if payload is not None else {}, headers, timeout, send_body)
