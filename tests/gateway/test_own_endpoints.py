"""The gateway's own endpoints (health, probes, metrics) and the fallback upstream for everything else."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from tests.gateway.conftest import RunningGateway
from tests.gateway.doubles import JobDouble
from tests.support.ports import free_port

from trackside import gateway as gateway_package  # noqa: F401 - the package imports cleanly
from trackside.gateway.resolver import Route, StaticResolver
from trackside.gateway.server import VERSION


def test_health_reports_service_version_and_whether_auth_is_required(
    job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    routes = {("adder", "1.0.0"): Route("adder", "1.0.0", replicas=[job.address])}
    open_gateway = start_gateway(StaticResolver(routes))
    closed_gateway = start_gateway(StaticResolver(routes, tokens={"t": "User a"}))
    assert httpx.get(f"{open_gateway.url}/pub/health").json() == {
        "service": "pub",
        "version": VERSION,
        "status": "pass",
        "auth_required": False,
    }
    assert httpx.get(f"{closed_gateway.url}/pub/health").json()["auth_required"] is True


def test_probes_answer_200(gateway: RunningGateway) -> None:
    assert httpx.get(f"{gateway.url}/pub/live").status_code == 200
    assert httpx.get(f"{gateway.url}/pub/ready").json()["ready"] is True


def test_metrics_count_calls_codes_errors_and_times_per_job(gateway: RunningGateway) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        for _ in range(3):
            client.get("/pub/job/adder/1.0.0/x")
        client.get("/pub/job/adder/latest/status/500")
        client.get("/pub/job/nope/1.0.0/x")
        client.get("/pub/health")
        text = client.get("/pub/metrics").text
    assert 'pub_job_proxy_requests_total{job_name="adder",job_version="1.0.0"} 4' in text
    assert 'pub_job_proxy_response_codes_total{job_name="adder",job_version="1.0.0",status_code="200"} 3' in text
    assert 'pub_job_proxy_response_codes_total{job_name="adder",job_version="1.0.0",status_code="500"} 1' in text
    assert 'pub_job_proxy_response_codes_total{job_name="nope",job_version="1.0.0",status_code="404"} 1' in text
    assert 'pub_job_call_response_time_seconds_count{job_name="adder",job_version="1.0.0"} 4' in text
    assert 'pub_job_call_response_time_seconds_bucket{job_name="adder",job_version="1.0.0",le="+Inf"} 4' in text
    assert "pub_health_requests_total 1" in text
    assert "# TYPE pub_job_call_response_time_seconds histogram" in text


def test_other_paths_are_404_without_a_fallback(gateway: RunningGateway) -> None:
    response = httpx.get(f"{gateway.url}/lifecycle/api/v1/info")
    assert response.status_code == 404
    assert response.json()["error"] == "not found: /lifecycle/api/v1/info"


def test_other_paths_go_verbatim_to_the_fallback_upstream(
    job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    lifecycle = JobDouble("lifecycle").start()
    try:
        routes = {("adder", "1.0.0"): Route("adder", "1.0.0", replicas=[job.address])}
        gateway = start_gateway(StaticResolver(routes), ("127.0.0.1", lifecycle.port))
        with httpx.Client(base_url=gateway.url) as client:
            response = client.post("/lifecycle/api/v1/deploy?force=1", content=b"manifest", headers={"X-A": "b"})
            assert client.get("/pub/job/adder/1.0.0/x").json()["replica"] == "replica-1"
            assert client.get("/dashboard/").json()["replica"] == "lifecycle"
        echo = response.json()
        assert echo["replica"] == "lifecycle"
        assert echo["path"] == "/lifecycle/api/v1/deploy?force=1"
        assert echo["body"] == "manifest"
        sent = {k.lower(): v for k, v in echo["headers"]}
        assert sent["host"] == f"127.0.0.1:{gateway.port}"
        assert sent["x-a"] == "b"
        assert sent["x-request-tracing-id"] == response.headers["x-request-tracing-id"]
        assert lifecycle.connections == 1
    finally:
        lifecycle.stop()


def test_fallback_streams_server_sent_events(job: JobDouble, start_gateway: Callable[..., RunningGateway]) -> None:
    lifecycle = JobDouble("lifecycle").start()
    try:
        gateway = start_gateway(StaticResolver({}), ("127.0.0.1", lifecycle.port))
        url = f"{gateway.url}/lifecycle/api/v1/logs/stream?chunks=3&size=5&wait=1"
        with httpx.stream("GET", url, timeout=10) as response:
            pieces: list[bytes] = []
            for piece in response.iter_raw():
                if not pieces:
                    lifecycle.release.set()  # the first event arrived while the stream was still open
                pieces.append(piece)
        assert b"".join(pieces) == b"AAAAABBBBBCCCCC"
    finally:
        lifecycle.stop()


def test_run_gateway_serves_until_sigterm(tmp_path: Path) -> None:
    port, dead_port = free_port(), free_port()
    code = (
        "from trackside.config import Settings\n"
        "from trackside.gateway.server import run_gateway\n"
        f"run_gateway(Settings(data_dir={str(tmp_path)!r}, host='127.0.0.1', port={port},"
        f" lifecycle_url='http://127.0.0.1:{dead_port}/lifecycle'))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/pub/health")
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.05)
        assert health.json()["auth_required"] is True
        response = httpx.get(f"http://127.0.0.1:{port}/pub/job/adder/latest/x")
        assert response.status_code == 502
        assert response.json()["error"].startswith("lifecycle unreachable")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(10) == 0
        finally:
            if process.stdout is not None:
                process.stdout.close()
