"""`call_job`: call another job through the gateway, from inside a job (stdlib only)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from .context import current_headers


class JobCallError(RuntimeError):
    """The called job (or the gateway) answered with an error status."""

    def __init__(self, url: str, status: int, body: str) -> None:
        super().__init__(f"calling {url} failed with HTTP {status}: {body[:500]}")
        self.url = url
        self.status = status
        self.body = body


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
    pub_url = os.environ.get("PUB_URL", "").rstrip("/")
    if not pub_url:
        raise RuntimeError("PUB_URL is not set: call_job needs the gateway's address")
    if not path.startswith("/"):
        path = "/" + path
    url = f"{pub_url}/job/{quote(job_name)}/{quote(version)}{path}"
    headers = {"Accept": "application/json"}
    token = os.environ.get("AUTH_TOKEN", "")
    if token:
        headers["X-Racetrack-Auth"] = token
    for name, value in current_headers().items():
        headers[name] = value
    data = None
    if payload is not None or method.upper() in ("POST", "PUT", "PATCH"):
        data = json.dumps(payload if payload is not None else {}).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=headers, method=method.upper())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raise JobCallError(url, exc.code, exc.read().decode("utf-8", "replace")) from None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")
