"""`call_job` from inside a job: gateway URL, auth token, and forwarded tracing headers."""

from __future__ import annotations

from tests.runtime.harness import StartJob

CALLEE = """
try:
    from trackside_runtime.current_request import request_context
except ImportError:
    from trackside.runtime.current_request import request_context


class Callee:
    def perform(self, x: int) -> dict:
        headers = request_context.get().headers
        return {
            "double": 2 * x,
            "auth": headers.get("x-racetrack-auth"),
            "tracing": headers.get("x-request-tracing-id"),
            "caller": headers.get("x-caller-name"),
        }
"""

CALLER = """
try:
    from trackside_runtime.client import call_job
except ImportError:
    from trackside.runtime.client import call_job


class Caller:
    def perform(self, x: int) -> dict:
        return call_job("callee", payload={"x": x}, version="1.0.0")

    def fail(self) -> dict:
        return call_job("callee", payload={"wrong": 1}, version="1.0.0")

    def auxiliary_endpoints(self):
        return {"/fail": self.fail}
"""


def test_call_job_reaches_the_other_job_with_token_and_tracing_id(start_job: StartJob) -> None:
    callee = start_job(CALLEE, env={"JOB_NAME": "callee", "JOB_VERSION": "1.0.0"})
    caller = start_job(
        CALLER,
        env={"JOB_NAME": "caller", "PUB_URL": f"{callee.url}/pub", "AUTH_TOKEN": "family-token"},
    )
    resp = caller.client.post(
        "/api/v1/perform", json={"x": 21}, headers={"X-Request-Tracing-Id": "t-1", "X-Caller-Name": "alice"}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"double": 42, "auth": "family-token", "tracing": "t-1", "caller": "alice"}


def test_call_job_error_names_the_url_and_status(start_job: StartJob) -> None:
    callee = start_job(CALLEE, env={"JOB_NAME": "callee", "JOB_VERSION": "1.0.0"})
    caller = start_job(CALLER, env={"JOB_NAME": "caller", "PUB_URL": f"{callee.url}/pub"})
    resp = caller.client.post("/api/v1/fail", json={})
    assert resp.status_code == 500
    body = resp.json()
    assert body["type"] == "JobCallError"
    assert f"{callee.url}/pub/job/callee/1.0.0/api/v1/perform" in body["error"]
    assert "HTTP 400" in body["error"]
