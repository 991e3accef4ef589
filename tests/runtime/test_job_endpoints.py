"""Auxiliary and static endpoints, docs, redirects, CORS, tracing ids and metrics."""

from __future__ import annotations

import concurrent.futures
import time

import httpx
from tests.runtime.harness import RunningJob, StartJob

FULL = """
import os
from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class EndpointConfig:
    path: str
    method: str
    handler: Callable
    other_options: dict


class Job:
    \"\"\"A job with every optional hook.\"\"\"

    def __init__(self):
        self.calls = 0

    def perform(self, a: int, b: int = 1) -> int:
        \"\"\"Multiply a by b.\"\"\"
        self.calls += 1
        return a * b

    def docs_input_examples(self) -> dict:
        return {"/perform": {"a": 6, "b": 7}, "/explain": {"x": 1}}

    def auxiliary_endpoints(self) -> dict:
        return {"/explain": self.explain, "negate": self.negate}

    def auxiliary_endpoints_v2(self) -> list:
        return [
            {"path": "/search", "method": "GET", "handler": self.search, "other_options": {}},
            EndpointConfig("/echo", "POST", self.echo, {}),
        ]

    def explain(self, x: int) -> dict:
        \"\"\"Explain x.\"\"\"
        return {"explained": x}

    def negate(self, x: int) -> int:
        return -x

    def search(self, q: str, page: str = "1") -> dict:
        return {"q": q, "page": page}

    def echo(self, **kwargs: Any) -> dict:
        return kwargs

    def static_endpoints(self) -> dict:
        return {
            "/manifest": "files/manifest.txt",
            "/data.bin": ("files/data.bin", "application/octet-stream"),
            "/assets": "files/assets",
        }

    def metrics(self) -> list:
        return [
            {"name": "job_calls", "value": self.calls, "description": "perform calls"},
            {"name": "job_model_info", "value": 1, "labels": {"model": "v2"}},
            {"name": "bad name!", "value": 3},
        ]
"""

FILES = {
    "files/manifest.txt": "hello manifest\n",
    "files/data.bin": "0101",
    "files/assets/app.js": "console.log(1);\n",
    "files/assets/css/site.css": "body{}\n",
    "files/secret.txt": "do not serve\n",
}


def start_full(start_job: StartJob, env: dict[str, str] | None = None) -> RunningJob:
    return start_job(FULL, files=FILES, env=env, entrypoint_class="Job")


def test_auxiliary_endpoints_v1_are_post_routes(start_job: StartJob) -> None:
    job = start_full(start_job)
    assert job.client.post("/api/v1/explain", json={"x": 3}).json() == {"explained": 3}
    assert job.client.post("/pub/job/adder/latest/api/v1/negate", json={"x": 3}).json() == -3
    assert job.client.post("/api/v1/explain", json={"y": 3}).status_code == 400
    assert job.client.get("/api/v1/explain").status_code == 405


def test_auxiliary_endpoints_v2_get_takes_query_params(start_job: StartJob) -> None:
    job = start_full(start_job)
    resp = job.client.get("/api/v1/search", params={"q": "cats", "page": "2"})
    assert resp.json() == {"q": "cats", "page": "2"}
    assert job.client.get("/api/v1/search", params={"q": "x"}).json() == {"q": "x", "page": "1"}
    assert job.client.get("/api/v1/search").status_code == 400
    assert job.client.post("/api/v1/echo", json={"k": [1, 2]}).json() == {"k": [1, 2]}


def test_static_endpoints_serve_files_and_directories(start_job: StartJob) -> None:
    job = start_full(start_job)
    manifest = job.client.get("/api/v1/manifest")
    assert (manifest.status_code, manifest.text) == (200, "hello manifest\n")
    assert manifest.headers["content-type"].startswith("text/plain")
    data = job.client.get("/pub/job/adder/1.2.3/api/v1/data.bin")
    assert data.headers["content-type"] == "application/octet-stream"
    js = job.client.get("/api/v1/assets/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    css = job.client.get("/api/v1/assets/css/site.css")
    assert (css.status_code, css.headers["content-type"]) == (200, "text/css")
    assert job.client.get("/api/v1/assets/missing.js").status_code == 404


def test_static_directory_does_not_serve_files_outside_it(start_job: StartJob) -> None:
    job = start_full(start_job)
    for path in ("/api/v1/assets/../secret.txt", "/api/v1/assets/%2e%2e/secret.txt", "/api/v1/assets/..%2fsecret.txt"):
        with httpx.Client() as raw:  # send the path as is (no client-side normalisation)
            req = raw.build_request("GET", job.url + "/")
            req.url = req.url.copy_with(raw_path=path.encode())
            resp = raw.send(req)
        assert resp.status_code == 404, path
        assert "do not serve" not in resp.text


def test_openapi_describes_perform_aux_and_auth(start_job: StartJob) -> None:
    job = start_full(start_job)
    spec = job.client.get("/pub/job/adder/1.2.3/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["description"] == "A job with every optional hook."
    perform = spec["paths"]["/api/v1/perform"]["post"]
    assert perform["description"] == "Multiply a by b."
    media = perform["requestBody"]["content"]["application/json"]
    assert media["example"] == {"a": 6, "b": 7}
    assert media["schema"]["properties"]["a"] == {"type": "integer"}
    assert media["schema"]["required"] == ["a"]
    assert spec["paths"]["/api/v1/explain"]["post"]["requestBody"]["content"]["application/json"]["example"] == {"x": 1}
    assert "get" in spec["paths"]["/api/v1/search"]
    assert spec["components"]["securitySchemes"]["RacetrackAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Racetrack-Auth",
    }


def test_docs_page_is_self_contained_and_fetches_openapi_relatively(adder: RunningJob) -> None:
    resp = adder.client.get("/pub/job/adder/1.2.3/docs")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert 'fetch("openapi.json")' in html
    assert "http://" not in html and "https://" not in html  # no CDN or remote asset
    assert "Try it" in html


def test_root_redirects_to_docs_relative(adder: RunningJob) -> None:
    root = adder.client.get("/")
    assert (root.status_code, root.headers["location"]) == (302, "docs")
    slash = adder.client.get("/pub/job/adder/1.2.3/")
    assert slash.headers["location"] == "docs"
    bare = adder.client.get("/pub/job/adder/1.2.3")
    assert bare.headers["location"] == "1.2.3/docs"  # resolves to /pub/job/adder/1.2.3/docs
    followed = adder.client.get("/pub/job/adder/1.2.3", follow_redirects=True)
    assert followed.status_code == 200 and "<html" in followed.text


def test_root_redirects_to_home_page(start_job: StartJob) -> None:
    job = start_full(start_job, env={"JOB_HOME_PAGE": "/api/v1/manifest"})
    assert job.client.get("/pub/job/adder/1.2.3/").headers["location"] == "api/v1/manifest"
    assert job.client.get("/pub/job/adder/1.2.3/", follow_redirects=True).text == "hello manifest\n"


def test_cors_headers_and_preflight(adder: RunningJob) -> None:
    resp = adder.client.post("/api/v1/perform", json={"a": 1}, headers={"Origin": "http://example.test"})
    assert resp.headers["access-control-allow-origin"] == "*"
    pre = adder.client.options(
        "/pub/job/adder/1.2.3/api/v1/perform",
        headers={
            "Origin": "http://example.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-racetrack-auth",
        },
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "*"
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert pre.headers["access-control-allow-headers"] == "content-type,x-racetrack-auth"


def test_tracing_id_is_echoed_and_logged(adder: RunningJob) -> None:
    resp = adder.client.post("/api/v1/perform", json={"a": 1}, headers={"X-Request-Tracing-Id": "trace-42"})
    assert resp.headers["x-request-tracing-id"] == "trace-42"
    assert "x-request-tracing-id" not in adder.client.get("/live").headers
    adder.wait_for(lambda: "POST /api/v1/perform 200" in adder.stdout() and "tracing_id=trace-42" in adder.stdout())
    adder.client.get("/live")
    adder.client.get("/metrics")
    time.sleep(0.3)
    assert "/live" not in adder.stdout() and "/metrics" not in adder.stdout()


def test_request_log_can_be_turned_off(start_job: StartJob) -> None:
    job = start_job("class J:\n    def perform(self):\n        return 1\n", env={"LOG_REQUESTS": "false"})
    job.client.post("/api/v1/perform", json={})
    time.sleep(0.3)
    assert "/api/v1/perform" not in job.stdout()


def test_metrics_count_calls_errors_durations_and_user_gauges(start_job: StartJob) -> None:
    job = start_full(start_job)
    job.client.post("/api/v1/perform", json={"a": 2})
    job.client.post("/pub/job/adder/latest/api/v1/perform", json={"a": 3})
    job.client.post("/api/v1/perform", json={"zzz": 3})  # 400
    job.client.post("/api/v1/explain", json={"x": 1})
    text = job.client.get("/metrics").text
    assert job.client.get("/metrics").headers["content-type"].startswith("text/plain; version=0.0.4")
    lines = text.splitlines()
    assert "requests_started_total 4" in lines
    assert "requests_done_total 4" in lines
    assert 'endpoint_requests_started_total{endpoint="/api/v1/perform"} 3' in lines
    assert 'endpoint_requests_started_total{endpoint="/api/v1/explain"} 1' in lines
    assert 'request_duration_count{endpoint="/api/v1/perform"} 3' in lines
    assert 'request_duration_bucket{endpoint="/api/v1/perform",le="+Inf"} 3' in lines
    assert "# TYPE request_duration histogram" in lines
    assert any(line.startswith("last_call_timestamp ") and float(line.split()[1]) > 1e9 for line in lines)
    assert "# HELP job_calls perform calls" in lines
    assert "job_calls 2" in lines
    assert 'job_model_info{model="v2"} 1' in lines
    assert any(line.startswith("# skipped metrics()[2]") for line in lines)


FAILING_CALLS = """
class J:
    def perform(self, fail: bool = False):
        if fail:
            raise KeyError("boom")
        return 1
"""


def test_metrics_count_internal_errors(start_job: StartJob) -> None:
    job = start_job(FAILING_CALLS)
    job.client.post("/api/v1/perform", json={"fail": True})
    job.client.post("/api/v1/perform", json={"fail": True})
    job.client.post("/api/v1/perform", json={})
    assert 'request_internal_errors_total{endpoint="/api/v1/perform"} 2' in job.client.get("/metrics").text


SLOW = """
import time


class Slow:
    def perform(self, seconds: float = 0.6) -> str:
        time.sleep(seconds)
        return "done"
"""


def test_max_concurrency_queue_overflow_gets_429(start_job: StartJob) -> None:
    job = start_job(SLOW, env={"JOB_MAX_CONCURRENCY": "1", "JOB_MAX_CONCURRENCY_QUEUE": "1"})

    def call() -> httpx.Response:
        # Long enough that all four arrive while the first still runs, even on a loaded machine.
        return httpx.post(f"{job.url}/api/v1/perform", json={"seconds": 2.0}, timeout=10)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = []
        for _ in range(4):
            futures.append(pool.submit(call))
            time.sleep(0.1)  # 1 runs, 1 waits, the other 2 overflow
        responses = [f.result() for f in futures]
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 429, 429]
    rejected = next(r for r in responses if r.status_code == 429)
    assert rejected.json()["type"] == "TooManyRequests"
    assert "too many requests" in rejected.json()["error"]


def test_max_concurrency_without_queue_limit_serialises_calls(start_job: StartJob) -> None:
    job = start_job(SLOW, env={"JOB_MAX_CONCURRENCY": "1"})
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        codes = list(
            pool.map(
                lambda _: httpx.post(f"{job.url}/api/v1/perform", json={"seconds": 0.3}, timeout=10).status_code,
                range(3),
            )
        )
    assert codes == [200, 200, 200]
    assert time.monotonic() - started >= 0.85  # one at a time
