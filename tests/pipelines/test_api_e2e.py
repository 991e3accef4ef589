"""chainr's API and ours on a real `trackside up` (local executor): shapes, statuses, errors, auth, and
every run feature end to end (outputs, params, retries, timeouts, parallelism, cancel, retry, logs,
events, the DAG, named pipelines, schedules, webhooks)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.pipelines.support import (
    README_GOLDEN_JOBS,
    README_PIPELINE,
    Receiver,
    chainr_view,
    http_get,
    http_post,
    shell_quote,
    wait_for_run,
)
from tests.support.platform import RunningPlatform
from tests.support.polling import wait_until

from trackside.auth.service import AuthService
from trackside.config import Settings
from trackside.store.database import Database

pytestmark = [pytest.mark.slow, pytest.mark.store]


def post_run(platform: RunningPlatform, body: dict[str, Any]) -> str:
    response = platform.http.post(f"{platform.url}/api/runs", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["metadata"]["uid"])


def run_to_end(platform: RunningPlatform, body: dict[str, Any]) -> dict[str, Any]:
    return wait_for_run(platform.http, platform.url, post_run(platform, body))


def jobs_by_name(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["name"]: job for job in run["jobs"]}


def internal_token(platform: RunningPlatform, scopes: list[str]) -> str:
    db = Database(platform.database_url)
    try:
        return AuthService.from_settings(Settings(data_dir=platform.data_dir), db).internal_token("ci", scopes)
    finally:
        db.dispose()


# -- chainr, unchanged -------------------------------------------------------------------------------


def test_the_readme_pipeline_answers_and_ends_as_chainr_s_golden_run(pipeline_platform: RunningPlatform) -> None:
    platform = pipeline_platform
    response = platform.http.post(f"{platform.url}/api/runs", json=README_PIPELINE)
    assert response.status_code == 202
    accepted = response.json()
    uid = accepted["metadata"]["uid"]
    assert uuid.UUID(uid).version == 4
    assert chainr_view(accepted) == {
        "kind": "Run",
        "metadata": {"selfLink": f"/api/runs/{uid}", "uid": uid},
        "status": "PENDING",
        "jobs": [{"name": name, "status": "PENDING"} for name in ("first", "second", "success", "error")],
    }
    final = wait_for_run(platform.http, platform.url, uid)
    assert chainr_view(final) == {
        "kind": "Run",
        "metadata": {"selfLink": f"/api/runs/{uid}", "uid": uid},
        "status": "SUCCESSFUL",
        "jobs": README_GOLDEN_JOBS,
    }
    listed = platform.http.get(f"{platform.url}/api/runs").json()
    assert listed["kind"] == "RunList" and listed["metadata"]["selfLink"] == "/api/runs"
    item = next(i for i in listed["items"] if i["metadata"]["uid"] == uid)
    assert "kind" not in item and chainr_view({"kind": None, **item})["jobs"] == README_GOLDEN_JOBS


def test_when_first_fails_the_error_job_runs_success_is_skipped_and_the_run_fails(
    pipeline_platform: RunningPlatform,
) -> None:
    body = json.loads(json.dumps(README_PIPELINE))
    body["jobs"]["first"]["run"] = "exit 3"
    run = run_to_end(pipeline_platform, body)
    assert [(j["name"], j["status"]) for j in run["jobs"]] == [
        ("first", "FAILED"),
        ("second", "SUCCESSFUL"),
        ("success", "SKIPPED"),
        ("error", "SUCCESSFUL"),
    ]
    assert run["status"] == "FAILED"
    assert jobs_by_name(run)["first"]["reason"] == "exited with code 3"


def test_an_empty_pipeline_ends_successful(pipeline_platform: RunningPlatform) -> None:
    assert run_to_end(pipeline_platform, {"kind": "Pipeline", "jobs": {}})["status"] == "SUCCESSFUL"


def test_api_root_and_errors_have_chainr_s_shapes(pipeline_platform: RunningPlatform) -> None:
    platform, http = pipeline_platform, pipeline_platform.http
    assert http.get(f"{platform.url}/api").json()["resources"]["runs"] == {
        "url": "/api/runs",
        "description": "Interact with runs",
    }
    assert http.get(f"{platform.url}/api").json()["kind"] == "APIResourceList"
    missing = http.get(f"{platform.url}/api/runs/nope")
    assert missing.status_code == 404
    assert missing.json() == {"kind": "Error", "error": "run nope was not found", "type": "NotFound"}
    for method, path in (("PUT", "/api/runs"), ("DELETE", "/api/runs/x"), ("POST", "/api")):
        answer = http.request(method, f"{platform.url}{path}")
        assert answer.status_code == 405 and answer.headers["allow"] == "GET, POST"
        assert answer.json()["kind"] == "Error"
    unknown = http.get(f"{platform.url}/api/runs/x/nothing/here")
    assert unknown.status_code == 404 and unknown.json()["error"] == "Resource not found"
    bad = http.post(f"{platform.url}/api/runs", json={"kind": "Pipeline", "jobs": {"a": {"image": "x"}}})
    assert bad.status_code == 400
    assert bad.json() == {"kind": "Error", "error": '/jobs/a: "run" value is required', "type": "PipelineInvalid"}
    not_json = http.post(f"{platform.url}/api/runs", content=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["kind"] == "Error"


def test_unknown_dependencies_cycles_and_bad_names_are_refused_at_post_naming_the_job(
    pipeline_platform: RunningPlatform,
) -> None:
    platform = pipeline_platform
    cases = {
        "unknown": {"deploy": {"image": "b", "run": "true", "dependsOn": [{"job": "build"}]}},
        "cycle": {
            "a": {"image": "b", "run": "true", "dependsOn": [{"job": "b"}]},
            "b": {"image": "b", "run": "true", "dependsOn": [{"job": "a"}]},
        },
        "name": {"Bad_Name!": {"image": "b", "run": "true"}},
    }
    messages = {}
    for case, jobs in cases.items():
        answer = platform.http.post(f"{platform.url}/api/runs", json={"kind": "Pipeline", "jobs": jobs})
        assert answer.status_code == 400, answer.text
        messages[case] = answer.json()["error"]
    assert "job deploy depends on unknown job 'build'" in messages["unknown"]
    assert "dependency cycle a -> b -> a" in messages["cycle"]
    assert "job name 'Bad_Name!' cannot be a container name" in messages["name"]
    before = platform.http.get(f"{platform.url}/api/runs").json()["items"]
    assert not any(len(item["jobs"]) == 1 and item["jobs"][0]["name"] == "Bad_Name!" for item in before)


def test_the_api_needs_a_token_with_run_pipeline(pipeline_platform: RunningPlatform) -> None:
    platform = pipeline_platform
    anonymous = http_get(f"{platform.url}/api/runs")
    assert anonymous.status_code == 401 and anonymous.json()["kind"] == "Error"
    without = internal_token(platform, ["call_job"])
    refused = http_post(f"{platform.url}/api/runs", json=README_PIPELINE, headers={"X-Racetrack-Auth": without})
    assert refused.status_code == 403
    assert refused.json()["error"] == "Internal ci has no run_pipeline permission"
    allowed = internal_token(platform, ["run_pipeline"])
    bearer = http_post(f"{platform.url}/api/runs", json=README_PIPELINE, headers={"Authorization": f"Bearer {allowed}"})
    assert bearer.status_code == 202


def test_a_new_user_may_run_pipelines_but_not_cancel_someone_else_s_run(pipeline_platform: RunningPlatform) -> None:
    platform = pipeline_platform
    username = f"runner-{uuid.uuid4().hex[:6]}@example.com"
    password = "correct-horse-battery-staple-9"
    api = platform.api
    assert http_post(f"{api}/users/register", json={"username": username, "password": password}).status_code == 201
    assert platform.http.post(f"{api}/users/{username}/activate").status_code == 200
    token = http_post(f"{api}/users/login", json={"username": username, "password": password}).json()["token"]
    user = {"X-Racetrack-Auth": token}
    slow = {"kind": "Pipeline", "jobs": {"wait": {"image": "b", "run": "sleep 30"}}}
    admins = post_run(platform, slow)
    mine = http_post(f"{platform.url}/api/runs", json=slow, headers=user)
    assert mine.status_code == 202
    refused = http_post(f"{platform.url}/api/runs/{admins}/cancel", headers=user)
    assert refused.status_code == 403 and "may not change run" in refused.json()["error"]
    assert (
        http_post(f"{platform.url}/api/runs/{mine.json()['metadata']['uid']}/cancel", headers=user).status_code == 202
    )
    assert platform.http.post(f"{platform.url}/api/runs/{admins}/cancel").status_code == 202
    assert wait_for_run(platform.http, platform.url, admins)["status"] == "CANCELED"


# -- beyond chainr -----------------------------------------------------------------------------------


def test_outputs_and_params_flow_into_later_steps_env(pipeline_platform: RunningPlatform) -> None:
    body = {
        "kind": "Pipeline",
        "params": {"greeting": "hello"},
        "jobs": {
            "produce": {
                "image": "busybox",
                "run": 'echo "::output word=$G-world"',
                "env": {"G": "${{ params.greeting }}"},
            },
            "consume": {
                "image": "busybox",
                "run": 'echo "got $W"; echo "::output length=${#W}"',
                "env": {"W": "${{ jobs.produce.outputs.word }}"},
                "dependsOn": [{"job": "produce"}],
            },
        },
    }
    run = run_to_end(pipeline_platform, body)
    jobs = jobs_by_name(run)
    assert run["status"] == "SUCCESSFUL"
    assert jobs["produce"]["outputs"] == {"word": "hello-world"}
    assert jobs["consume"]["outputs"] == {"length": "11"}
    uid = run["metadata"]["uid"]
    log = pipeline_platform.http.get(f"{pipeline_platform.url}/api/runs/{uid}/jobs/consume/logs").text
    assert "got hello-world" in log


def test_a_failing_step_is_retried_with_backoff_until_it_succeeds(
    pipeline_platform: RunningPlatform, tmp_path: Path
) -> None:
    counter = shell_quote(tmp_path / "count")
    script = f"n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ]"
    body = {
        "kind": "Pipeline",
        "jobs": {
            "flaky": {"image": "b", "run": script, "retry": {"limit": 3, "backoff": {"seconds": 0.2, "factor": 2}}}
        },
    }
    run = run_to_end(pipeline_platform, body)
    flaky = jobs_by_name(run)["flaky"]
    assert run["status"] == "SUCCESSFUL" and flaky["attempt"] == 3
    assert [a["status"] for a in flaky["attempts"]] == ["FAILED", "FAILED", "SUCCESSFUL"]
    first_end = flaky["attempts"][0]["finishedAt"]
    second_start = flaky["attempts"][1]["startedAt"]
    gap = _seconds(second_start) - _seconds(first_end)
    assert gap >= 0.2
    third_gap = _seconds(flaky["attempts"][2]["startedAt"]) - _seconds(flaky["attempts"][1]["finishedAt"])
    assert third_gap >= 0.4  # exponential: 0.2 s, then 0.4 s
    assert (tmp_path / "count").read_text().strip() == "3"


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_a_step_past_its_timeout_is_killed_and_fails(pipeline_platform: RunningPlatform, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    body = {
        "kind": "Pipeline",
        "jobs": {
            "slow": {"image": "b", "run": f"echo $$ > {shell_quote(pid_file)}; exec sleep 60", "timeoutSeconds": 1}
        },
    }
    run = run_to_end(pipeline_platform, body)
    slow = jobs_by_name(run)["slow"]
    assert run["status"] == "FAILED" and slow["status"] == "FAILED"
    assert slow["reason"] == "timed out after 1 s"
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]


def test_a_run_past_its_timeout_fails_with_its_running_steps_canceled(pipeline_platform: RunningPlatform) -> None:
    body = {
        "kind": "Pipeline",
        "timeoutSeconds": 1,
        "jobs": {
            "slow": {"image": "b", "run": "sleep 60"},
            "after": {"image": "b", "run": "true", "dependsOn": [{"job": "slow"}]},
        },
    }
    run = run_to_end(pipeline_platform, body)
    assert run["status"] == "FAILED" and run["reason"] == "run timed out after 1 s"
    assert [(j["name"], j["status"]) for j in run["jobs"]] == [("slow", "CANCELED"), ("after", "SKIPPED")]


def test_parallelism_limits_the_steps_running_at_once(pipeline_platform: RunningPlatform, tmp_path: Path) -> None:
    lock = shell_quote(tmp_path / "lock")
    step = {"image": "b", "run": f"mkdir {lock} || exit 1; sleep 0.3; rmdir {lock}"}
    body = {"kind": "Pipeline", "parallelism": 1, "jobs": {f"s{i}": dict(step) for i in range(4)}}
    run = run_to_end(pipeline_platform, body)
    assert run["status"] == "SUCCESSFUL", run
    spans = sorted((_seconds(j["startedAt"]), _seconds(j["finishedAt"])) for j in run["jobs"])
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False))


def test_allow_failure_and_completion_and_always_conditions(pipeline_platform: RunningPlatform) -> None:
    body = {
        "kind": "Pipeline",
        "jobs": {
            "lint": {"image": "b", "run": "exit 1", "allowFailure": True},
            "report": {"image": "b", "run": "true", "dependsOn": [{"job": "lint", "conditions": {"on": "completion"}}]},
            "never": {"image": "b", "run": "true", "dependsOn": [{"job": "lint"}]},
            "cleanup": {"image": "b", "run": "true", "dependsOn": [{"job": "never", "conditions": {"on": "always"}}]},
        },
    }
    run = run_to_end(pipeline_platform, body)
    assert {j["name"]: j["status"] for j in run["jobs"]} == {
        "lint": "FAILED",
        "report": "SUCCESSFUL",
        "never": "SKIPPED",
        "cleanup": "SUCCESSFUL",
    }
    assert run["status"] == "SUCCESSFUL"


def test_cancel_kills_running_steps_and_skips_pending_ones(pipeline_platform: RunningPlatform, tmp_path: Path) -> None:
    platform = pipeline_platform
    pid_file = tmp_path / "pid"
    body = {
        "kind": "Pipeline",
        "jobs": {
            "long": {"image": "b", "run": f"echo $$ > {shell_quote(pid_file)}; exec sleep 60"},
            "next": {"image": "b", "run": "true", "dependsOn": [{"job": "long"}]},
        },
    }
    uid = post_run(platform, body)
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the step started")
    pid = int(pid_file.read_text())
    answer = platform.http.post(f"{platform.url}/api/runs/{uid}/cancel")
    assert answer.status_code == 202 and answer.json()["kind"] == "Run"
    run = wait_for_run(platform.http, platform.url, uid)
    assert run["status"] == "CANCELED"
    assert [(j["name"], j["status"]) for j in run["jobs"]] == [("long", "CANCELED"), ("next", "SKIPPED")]
    assert jobs_by_name(run)["long"]["reason"] == "canceled by User admin"
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), what="the step's process is gone")


def test_cancel_still_runs_the_steps_that_wait_with_always_and_spares_them(
    pipeline_platform: RunningPlatform, tmp_path: Path
) -> None:
    platform = pipeline_platform
    pid_file, cleaned = tmp_path / "pid", tmp_path / "cleaned"
    body = {
        "kind": "Pipeline",
        "jobs": {
            "long": {"image": "b", "run": f"echo $$ > {shell_quote(pid_file)}; exec sleep 60"},
            "next": {"image": "b", "run": "true", "dependsOn": [{"job": "long"}]},
            "report": {"image": "b", "run": "true", "dependsOn": [{"job": "long", "conditions": {"on": "completion"}}]},
            "cleanup": {
                "image": "b",
                "run": f"echo cleaned >> {shell_quote(cleaned)}",
                "dependsOn": [
                    {"job": "long", "conditions": {"on": "always"}},
                    {"job": "next", "conditions": {"on": "always"}},
                ],
            },
        },
    }
    uid = post_run(platform, body)
    wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the step started")
    assert platform.http.post(f"{platform.url}/api/runs/{uid}/cancel").status_code == 202
    run = wait_for_run(platform.http, platform.url, uid)
    assert run["status"] == "CANCELED"
    assert {j["name"]: j["status"] for j in run["jobs"]} == {
        "long": "CANCELED",
        "next": "SKIPPED",
        "report": "SKIPPED",
        "cleanup": "SUCCESSFUL",
    }
    assert cleaned.read_text() == "cleaned\n"


def test_retry_keeps_successful_steps_and_their_outputs_and_reruns_the_rest(
    pipeline_platform: RunningPlatform, tmp_path: Path
) -> None:
    platform = pipeline_platform
    ran = shell_quote(tmp_path / "ran")
    flag = shell_quote(tmp_path / "fixed")
    body = {
        "kind": "Pipeline",
        "jobs": {
            "build": {"image": "b", "run": f"echo build >> {ran}; echo ::output artifact=a-1"},
            "test": {
                "image": "b",
                "run": f"echo test >> {ran}; [ -e {flag} ] && echo using $A",
                "env": {"A": "${{ jobs.build.outputs.artifact }}"},
                "dependsOn": [{"job": "build"}],
            },
            "publish": {"image": "b", "run": f"echo publish >> {ran}", "dependsOn": [{"job": "test"}]},
        },
    }
    first = run_to_end(platform, body)
    assert first["status"] == "FAILED"
    (tmp_path / "fixed").write_text("")
    answer = platform.http.post(f"{platform.url}/api/runs/{first['metadata']['uid']}/retry")
    assert answer.status_code == 202
    assert answer.json()["metadata"]["retryOf"] == first["metadata"]["uid"]
    second = wait_for_run(platform.http, platform.url, answer.json()["metadata"]["uid"])
    assert second["status"] == "SUCCESSFUL"
    build = jobs_by_name(second)["build"]
    assert build["outputs"] == {"artifact": "a-1"} and build["keptFrom"] == first["metadata"]["uid"]
    assert (tmp_path / "ran").read_text().split() == ["build", "test", "test", "publish"]
    log = platform.http.get(f"{platform.url}/api/runs/{second['metadata']['uid']}/jobs/test/logs").text
    assert "using a-1" in log
    again = platform.http.post(f"{platform.url}/api/runs/{uuid.uuid4()}/retry")
    assert again.status_code == 404


def test_step_logs_can_be_followed_until_the_step_ends(pipeline_platform: RunningPlatform, tmp_path: Path) -> None:
    platform = pipeline_platform
    go = tmp_path / "go"
    body = {"kind": "Pipeline", "jobs": {"talk": talk_until(go)}}
    uid = post_run(platform, body)
    assert follow_talk(platform, uid, go, before=lambda: None) == ["one", "two", "{}"]


def talk_until(go: Path) -> dict[str, Any]:
    """A step that says `one`, waits for `go` to exist, then says `two`."""
    return {"image": "b", "run": f"echo one; while [ ! -e {shell_quote(go)} ]; do sleep 0.05; done; echo two"}


def follow_talk(platform: RunningPlatform, uid: str, go: Path, before: Callable[[], object]) -> list[str]:
    """The data lines of step `talk`'s followed log; `before()` runs once the stream is open, and `go`
    is made when `one` arrived."""
    lines: list[str] = []
    with platform.http.stream("GET", f"{platform.url}/api/runs/{uid}/jobs/talk/logs", params={"follow": "1"}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        before()
        for line in stream.iter_lines():
            if line.startswith("data: "):
                lines.append(line[6:])
                if line == "data: one":
                    go.write_text("")
    return lines


def test_a_log_followed_before_its_step_started_follows_its_first_attempt(
    pipeline_platform: RunningPlatform, tmp_path: Path
) -> None:
    platform = pipeline_platform
    gate, go = tmp_path / "gate", tmp_path / "go"
    body = {
        "kind": "Pipeline",
        "jobs": {
            "wait": {"image": "b", "run": f"while [ ! -e {shell_quote(gate)} ]; do sleep 0.05; done"},
            "talk": {**talk_until(go), "dependsOn": [{"job": "wait"}]},
        },
    }
    uid = post_run(platform, body)
    # The follow begins while `talk` waits for `wait`: it has no attempt yet.
    assert follow_talk(platform, uid, go, before=lambda: gate.write_text("")) == ["one", "two", "{}"]


def test_run_events_stream_as_server_sent_events_and_resume_after_last_event_id(
    pipeline_platform: RunningPlatform,
) -> None:
    platform = pipeline_platform
    uid = post_run(platform, README_PIPELINE)
    events = []
    with platform.http.stream("GET", f"{platform.url}/api/runs/{uid}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith('data: {"id"'):
                events.append(json.loads(line[6:]))
    assert events[0]["type"] == "START" and events[0]["scope"] == "run"
    assert events[-1] == {**events[-1], "type": "SUCCESS", "scope": "run", "status": "SUCCESSFUL", "runUid": uid}
    skipped = [e for e in events if e["type"] == "SKIPPED"]
    assert [e["job"] for e in skipped] == ["error"] and skipped[0]["message"]
    assert all(e["title"] and e["message"] and e["timestamp"] for e in events)
    later = platform.http.get(
        f"{platform.url}/api/runs/{uid}/events", headers={"Last-Event-ID": str(events[2]["id"])}
    ).text
    resumed = [json.loads(line[6:]) for line in later.splitlines() if line.startswith('data: {"id"')]
    assert [e["id"] for e in resumed] == [e["id"] for e in events[3:]]


def test_a_run_s_dag_has_levels_statuses_and_conditions(pipeline_platform: RunningPlatform) -> None:
    run = run_to_end(pipeline_platform, README_PIPELINE)
    graph = pipeline_platform.http.get(f"{pipeline_platform.url}/api/runs/{run['metadata']['uid']}/graph").json()
    assert graph["kind"] == "RunGraph"
    assert [(n["name"], n["level"], n["status"]) for n in graph["nodes"]] == [
        ("first", 0, "SUCCESSFUL"),
        ("second", 0, "SUCCESSFUL"),
        ("success", 1, "SUCCESSFUL"),
        ("error", 1, "SKIPPED"),
    ]
    assert graph["edges"] == [
        {"from": "first", "to": "success", "condition": "success"},
        {"from": "first", "to": "error", "condition": "failure"},
    ]
    job = pipeline_platform.http.get(f"{pipeline_platform.url}/api/runs/{run['metadata']['uid']}/jobs/first").json()
    assert job["kind"] == "Job" and job["attempts"][0]["exitCode"] == 0


def test_named_pipelines_are_versioned_and_run_with_params(pipeline_platform: RunningPlatform) -> None:
    platform = pipeline_platform
    name = f"greet-{uuid.uuid4().hex[:6]}"
    body = {
        "kind": "Pipeline",
        "params": {"who": "world"},
        "jobs": {"say": {"image": "b", "run": 'echo "::output said=hi $W"', "env": {"W": "${{ params.who }}"}}},
    }
    first = platform.http.post(f"{platform.url}/api/pipelines", json={"name": name, "pipeline": body})
    assert first.status_code == 201 and first.json()["metadata"]["version"] == 1
    body["jobs"]["say"]["run"] = 'echo "::output said=hello $W"'
    second = platform.http.post(f"{platform.url}/api/pipelines", json={"name": name, "pipeline": body})
    assert second.json()["metadata"]["version"] == 2 and second.json()["versions"] == [1, 2]
    started = platform.http.post(f"{platform.url}/api/pipelines/{name}/runs", json={"params": {"who": "you"}})
    assert started.status_code == 202
    run = wait_for_run(platform.http, platform.url, started.json()["metadata"]["uid"])
    assert run["metadata"]["pipeline"] == {"name": name, "version": 2}
    assert jobs_by_name(run)["say"]["outputs"] == {"said": "hello you"}
    old = platform.http.post(f"{platform.url}/api/pipelines/{name}/runs", json={"version": 1})
    assert jobs_by_name(wait_for_run(platform.http, platform.url, old.json()["metadata"]["uid"]))["say"]["outputs"] == {
        "said": "hi world"
    }
    refused = platform.http.post(f"{platform.url}/api/pipelines/{name}/runs", json={"params": {"nope": 1}})
    assert refused.status_code == 400 and "unknown param(s) nope" in refused.json()["error"]
    invalid = platform.http.post(f"{platform.url}/api/pipelines", json={"name": name, "pipeline": {"kind": "Pipeline"}})
    assert invalid.status_code == 400


def test_schedules_are_created_listed_checked_and_deleted(pipeline_platform: RunningPlatform) -> None:
    platform = pipeline_platform
    name = f"nightly-{uuid.uuid4().hex[:6]}"
    platform.http.post(f"{platform.url}/api/pipelines", json={"name": name, "pipeline": README_PIPELINE})
    schedule = {"name": name, "pipeline": name, "cron": "0 3 * * *", "timezone": "Europe/Warsaw"}
    created = platform.http.post(f"{platform.url}/api/schedules", json={**schedule, "concurrencyPolicy": "Forbid"})
    assert created.status_code == 201, created.text
    assert created.json()["status"]["nextTickAt"].endswith(("01:00:00Z", "02:00:00Z"))  # 03:00 in Warsaw
    assert platform.http.post(f"{platform.url}/api/schedules", json=schedule).status_code == 409
    for bad, message in (
        ({"cron": "61 * * * *"}, "is not a cron expression"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"concurrencyPolicy": "Sometimes"}, "concurrencyPolicy"),
        ({"pipeline": "no-such-pipeline"}, "was not found"),
    ):
        answer = platform.http.post(f"{platform.url}/api/schedules", json={**schedule, "name": name + "-x", **bad})
        assert answer.status_code in (400, 404) and message in answer.json()["error"], answer.text
    assert name in [s["metadata"]["name"] for s in platform.http.get(f"{platform.url}/api/schedules").json()["items"]]
    assert platform.http.delete(f"{platform.url}/api/schedules/{name}").status_code == 204
    assert platform.http.get(f"{platform.url}/api/schedules/{name}").status_code == 404


def test_webhooks_are_signed_and_retried_until_delivered(pipeline_platform: RunningPlatform) -> None:
    receiver = Receiver(script=[500])
    try:
        body = {
            **README_PIPELINE,
            "notifications": [
                {"on": ["SUCCESS", "FAILURE"], "scope": ["run"], "webhook": receiver.url, "secret": "s3"}
            ],
        }
        run = run_to_end(pipeline_platform, body)
        wait_until(lambda: len(receiver.received) >= 2, what="the webhook's second try")
        (first_headers, first_body), (headers, raw) = receiver.received[:2]
        event = json.loads(raw)
        assert event["type"] == "SUCCESS" and event["scope"] == "run" and event["runUid"] == run["metadata"]["uid"]
        expected = "sha256=" + hmac.new(b"s3", raw, hashlib.sha256).hexdigest()
        assert headers["x-trackside-signature-256"] == expected
        assert first_body == raw and first_headers["x-trackside-delivery"] == headers["x-trackside-delivery"]
        time.sleep(0.5)
        assert len(receiver.received) == 2  # run-scoped, SUCCESS/FAILURE only: one event, delivered once
        shown = pipeline_platform.http.get(f"{pipeline_platform.url}/api/runs/{run['metadata']['uid']}").json()
        assert shown["spec"]["notifications"][0]["secret"] == "***"
    finally:
        receiver.close()
