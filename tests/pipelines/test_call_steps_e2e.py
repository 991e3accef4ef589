"""`call` steps: a deployed job called through the gateway with the run owner's permissions."""

from __future__ import annotations

import pytest
from tests.conftest import EXAMPLES
from tests.pipelines.support import http_post, wait_for_run
from tests.pipelines.test_api_e2e import internal_token
from tests.support.platform import RunningPlatform, deploy_and_wait

pytestmark = [pytest.mark.slow, pytest.mark.store]

CHAIN = {
    "kind": "Pipeline",
    "params": {"n": 10},
    "jobs": {
        "first": {"call": {"job": "adder", "payload": {"a": 1, "b": 2}}},
        "second": {
            "call": {
                "job": "adder",
                "version": "0.0.1",
                "path": "/api/v1/perform",
                "payload": {"a": "${{ jobs.first.outputs.result }}", "b": "${{ params.n }}"},
            },
            "dependsOn": [{"job": "first"}],
        },
        "show": {
            "image": "busybox",
            "run": 'echo "::output sum=$SUM"',
            "env": {"SUM": "${{ jobs.second.outputs.result }}"},
            "dependsOn": [{"job": "second"}],
        },
    },
}


@pytest.fixture(scope="module")
def with_adder(pipeline_platform: RunningPlatform) -> RunningPlatform:
    assert deploy_and_wait(pipeline_platform, EXAMPLES / "adder")["status"] == "done"
    return pipeline_platform


def test_call_steps_chain_through_the_gateway_and_their_answers_become_outputs(with_adder: RunningPlatform) -> None:
    platform = with_adder
    response = platform.http.post(f"{platform.url}/api/runs", json=CHAIN)
    run = wait_for_run(platform.http, platform.url, response.json()["metadata"]["uid"])
    jobs = {job["name"]: job for job in run["jobs"]}
    assert run["status"] == "SUCCESSFUL", run
    assert jobs["first"]["outputs"] == {"result": 3}
    assert jobs["second"]["outputs"] == {"result": 13}
    assert jobs["show"]["outputs"] == {"sum": "13"}
    assert jobs["first"]["executor"] == "call"
    log = platform.http.get(f"{platform.url}/api/runs/{run['metadata']['uid']}/jobs/second/logs").text
    assert "/pub/job/adder/0.0.1/api/v1/perform" in log and "HTTP 200" in log and '"a": 3' in log


def test_a_call_steps_log_is_kept_with_its_attempt_and_can_be_followed(with_adder: RunningPlatform) -> None:
    # A call step writes no log file (that was a measured part of its overhead): its log is
    # recorded with the attempt, and a followed log ends with it too.
    platform = with_adder
    response = platform.http.post(f"{platform.url}/api/runs", json=CHAIN)
    uid = response.json()["metadata"]["uid"]
    assert wait_for_run(platform.http, platform.url, uid)["status"] == "SUCCESSFUL"
    assert not (platform.data_dir / "pipelines" / "runs" / uid / "second").exists()
    url = f"{platform.url}/api/runs/{uid}/jobs/second/logs"
    with platform.http.stream("GET", url, params={"follow": "1"}) as stream:
        followed = [line.removeprefix("data: ") for line in stream.iter_lines() if line.startswith("data: ")]
    assert followed[0].startswith("POST http") and followed[0].endswith("/pub/job/adder/0.0.1/api/v1/perform")
    assert followed[1] == 'payload: {"a": 3, "b": 10}'
    assert followed[2].startswith("HTTP 200 in ") and followed[3] == "13"
    assert followed[-1] == "{}"  # the end event's data
    assert platform.http.get(url).text.splitlines() == followed[:-1]


def test_a_call_step_runs_with_the_owner_s_permissions_only(with_adder: RunningPlatform) -> None:
    platform = with_adder
    token = internal_token(platform, ["run_pipeline"])  # may run pipelines, may not call jobs
    response = http_post(f"{platform.url}/api/runs", json=CHAIN, headers={"X-Racetrack-Auth": token})
    assert response.status_code == 202
    run = wait_for_run(platform.http, platform.url, response.json()["metadata"]["uid"])
    jobs = {job["name"]: job for job in run["jobs"]}
    assert run["status"] == "FAILED"
    assert jobs["first"]["status"] == "FAILED" and jobs["first"]["reason"].startswith("HTTP 403")
    assert jobs["second"]["status"] == "SKIPPED"


def test_a_call_to_a_job_that_answers_an_error_fails_the_step(with_adder: RunningPlatform) -> None:
    platform = with_adder
    body = {"kind": "Pipeline", "jobs": {"bad": {"call": {"job": "adder", "payload": {"a": "x"}}}}}
    run = wait_for_run(
        platform.http, platform.url, platform.http.post(f"{platform.url}/api/runs", json=body).json()["metadata"]["uid"]
    )
    assert run["status"] == "FAILED" and run["jobs"][0]["reason"].startswith("HTTP 4")
    missing = {"kind": "Pipeline", "jobs": {"gone": {"call": {"job": "no-such-job"}}}}
    run = wait_for_run(
        platform.http,
        platform.url,
        platform.http.post(f"{platform.url}/api/runs", json=missing).json()["metadata"]["uid"],
    )
    assert run["jobs"][0]["status"] == "FAILED" and run["jobs"][0]["reason"].startswith("HTTP 404")
