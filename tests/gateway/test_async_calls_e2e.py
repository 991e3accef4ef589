"""Async job calls through `trackside up`: started, run in the background, result read once, kept
across a restart of the gateway (Racetrack's `/pub/async/...`)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from tests.support.platform import RunningPlatform, deploy_and_wait, start_platform, write_job

pytestmark = pytest.mark.slow

SLEEPER = """\
import time

class Job:
    def perform(self, a=0, b=0, sleep=0.0):
        time.sleep(sleep)
        return a + b

    def auxiliary_endpoints(self):
        return {"/fail": self.fail}

    def fail(self):
        raise ValueError("no luck")
"""


def start_call(platform: RunningPlatform, payload: dict, path: str = "/api/v1/perform", **kwargs: object) -> str:
    response = platform.http.post(f"{platform.url}/pub/async/new/job/sleeper/latest{path}", json=payload, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "ongoing"
    return str(body["task_id"])


def wait_status(platform: RunningPlatform, task_id: str, wanted: str) -> None:
    deadline = time.monotonic() + 60
    while (status := httpx.get(f"{platform.url}/pub/async/task/{task_id}/status").json()["status"]) != wanted:
        assert time.monotonic() < deadline, f"task {task_id} still {status}"
        time.sleep(0.2)


def test_an_async_call_runs_in_the_background_and_its_result_is_read_once(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    assert deploy_and_wait(platform, write_job(tmp_path / "job", "sleeper", SLEEPER))["status"] == "done"

    task_id = start_call(platform, {"a": 40, "b": 2, "sleep": 1.0})
    poll = f"{platform.url}/pub/async/task/{task_id}/poll"
    result = httpx.get(poll, timeout=60)  # a long poll: waits for the job's answer
    assert result.status_code == 200, result.text
    assert result.headers["content-type"].startswith("application/json")
    assert result.json() == 42
    gone = httpx.get(poll, timeout=60)
    assert gone.status_code == 404 and "not found" in gone.json()["error"], "a result is read once"

    # The job's own error answer is the result, as it answered it.
    failing = start_call(platform, {}, path="/api/v1/fail")
    answer = httpx.get(f"{platform.url}/pub/async/task/{failing}/poll", timeout=60)
    assert answer.status_code == 500 and answer.json()["type"] == "ValueError"

    # The same checks as a sync call, at once: no token, no call; an unknown job is a 404.
    anonymous = httpx.post(f"{platform.url}/pub/async/new/job/sleeper/latest/api/v1/perform", json={})
    assert anonymous.status_code == 401, anonymous.text
    unknown = platform.http.post(f"{platform.url}/pub/async/new/job/nope/latest/api/v1/perform", json={})
    assert unknown.status_code == 404, unknown.text
    assert httpx.get(f"{platform.url}/pub/async/task/not-a-task/poll").status_code == 404
    # The store of calls is the gateways' (scope call_admin_api), not the callers'.
    assert httpx.get(f"{platform.api}/job/async/call/{task_id}").status_code == 401


def test_results_outlive_a_gateway_restart_and_calls_cut_short_are_reported_failed(
    tmp_path: Path, database_url: str
) -> None:
    first = start_platform(tmp_path / "data", database_url)
    try:
        assert deploy_and_wait(first, write_job(tmp_path / "job", "sleeper", SLEEPER))["status"] == "done"
        done = start_call(first, {"a": 1, "b": 2})
        wait_status(first, done, "completed")
        cut_short = start_call(first, {"a": 1, "b": 1, "sleep": 600})
    finally:
        first.stop()
    port = int(first.url.rsplit(":", 1)[1])
    second = start_platform(tmp_path / "data", database_url, port=port)
    try:
        result = httpx.get(f"{second.url}/pub/async/task/{done}/poll", timeout=60)
        assert result.status_code == 200, result.text
        assert result.json() == 3
        failed = httpx.get(f"{second.url}/pub/async/task/{cut_short}/poll", timeout=60)
        assert failed.status_code == 500, failed.text
        body = failed.json()
        assert body["status"] == "failed" and "stopped before the job answered" in body["error"]
        assert (body["job_name"], body["job_path"]) == ("sleeper", "/api/v1/perform")
    finally:
        second.stop()
