"""What the gateway answers when it cannot or must not forward a call."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx
import pytest
from tests.gateway.conftest import RunningGateway
from tests.gateway.doubles import JobDouble
from tests.support.ports import free_port

from trackside.gateway.resolver import Route, StaticResolver


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_unknown_job_is_404_with_the_resolver_message_and_request_id(gateway: RunningGateway) -> None:
    response = httpx.get(f"{gateway.url}/pub/job/nope/1.0.0/x")
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "job nope version 1.0.0 not found"
    assert body["requestId"] == response.headers["x-request-tracing-id"]


def test_missing_or_wrong_token_is_401_and_counted(
    job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    routes = {("adder", "1.0.0"): Route("adder", "1.0.0", replicas=[job.address])}
    gateway = start_gateway(StaticResolver(routes, tokens={"good": "User a"}))
    url = f"{gateway.url}/pub/job/adder/1.0.0/x"
    assert httpx.get(url).status_code == 401
    wrong = httpx.get(url, headers={"X-Racetrack-Auth": "bad"})
    assert wrong.status_code == 401
    assert "requestId" in wrong.json()
    assert httpx.get(url, cookies={"X-Racetrack-Auth": "good"}).status_code == 200
    assert httpx.get(url, headers={"Authorization": "Bearer good"}).status_code == 200
    assert job.requests and all(r["path"].endswith("/x") for r in job.requests)
    assert len(job.requests) == 2
    assert gateway.server.metrics.auth_failed == 2


@pytest.mark.parametrize(("status", "replicas"), [("starting", ["127.0.0.1:1"]), ("running", []), ("starting", [])])
def test_job_not_ready_is_503_with_its_status(
    start_gateway: Callable[..., RunningGateway], status: str, replicas: list[str]
) -> None:
    gateway = start_gateway(StaticResolver({("adder", "2.0.0"): Route("adder", "2.0.0", status, replicas)}))
    response = httpx.get(f"{gateway.url}/pub/job/adder/2.0.0/x")
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "job adder 2.0.0 is not ready"
    assert body["jobStatus"] == status
    assert body["requestId"] == response.headers["x-request-tracing-id"]


def test_refused_connection_is_502_naming_the_job(start_gateway: Callable[..., RunningGateway]) -> None:
    dead = f"127.0.0.1:{free_port()}"
    routes = {("adder", "1.0.0"): Route("adder", "1.0.0", replicas=[dead], caller="User a")}
    gateway = start_gateway(StaticResolver(routes))
    response = httpx.get(f"{gateway.url}/pub/job/adder/1.0.0/x")
    assert response.status_code == 502
    body = response.json()
    assert body["error"].startswith("Reverse proxy error: connection refused")
    assert body["jobName"] == "adder"
    assert body["jobVersion"] == "1.0.0"
    assert body["jobStatus"] == "running"
    assert body["caller"] == "User a"
    assert body["requestId"] == response.headers["x-request-tracing-id"]
    assert gateway.server.metrics.jobs[("adder", "1.0.0")].errors == {"connection_refused": 1}


def test_job_closing_before_answering_is_502_and_the_next_call_works(gateway: RunningGateway) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        assert client.get("/pub/job/adder/1.0.0/warm-up").status_code == 200
        response = client.post("/pub/job/adder/1.0.0/close-early", content=b"x")
        assert response.status_code == 502
        assert response.json()["error"].startswith("Reverse proxy error:")
        assert client.get("/pub/job/adder/1.0.0/x").status_code == 200


def test_job_dying_mid_response_cuts_the_client_off_and_the_next_call_works(gateway: RunningGateway) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/pub/job/adder/1.0.0/close-mid")
        assert client.get("/pub/job/adder/1.0.0/x").status_code == 200
    assert gateway.server.metrics.jobs[("adder", "1.0.0")].errors == {"connection_broken": 1}


def _stale_pooled_connection(gateway: RunningGateway, job: JobDouble) -> None:
    """Leave one idle connection in the pool that the job has closed but the gateway has not noticed."""
    conn = gateway.on_loop(lambda: gateway.server.pool._idle[job.address][-1])
    gateway.on_loop(conn.pause_reading)  # so the gateway does not see the job's FIN while idle
    job.drop_connections()


def test_a_pooled_connection_the_job_closed_is_replaced_for_a_replayable_call(
    gateway: RunningGateway, job: JobDouble
) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        assert client.get("/pub/job/adder/1.0.0/x").status_code == 200
        _stale_pooled_connection(gateway, job)
        response = client.put("/pub/job/adder/1.0.0/x", content=b"idempotent")
        assert response.status_code == 200, response.text
        assert response.json()["body"] == "idempotent"
    assert job.connections == 2
    assert gateway.server.pool.connections_made == 2


def test_a_non_idempotent_call_whose_body_went_out_on_a_dead_pooled_connection_is_not_replayed(
    gateway: RunningGateway, job: JobDouble
) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        assert client.get("/pub/job/adder/1.0.0/x").status_code == 200
        _stale_pooled_connection(gateway, job)
        # Head and body in one write: the gateway sends both to the dead connection at once.
        response = raw_request(
            gateway.port,
            b"POST /pub/job/adder/1.0.0/x HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n"
            b"Connection: close\r\n\r\nnot twice",
        )
        assert response.startswith(b"HTTP/1.1 502 ")
        assert client.post("/pub/job/adder/1.0.0/x", content=b"next").status_code == 200
    assert [r["method"] for r in job.requests] == ["GET", "POST"]


def test_malformed_request_is_400(gateway: RunningGateway) -> None:
    received = raw_request(gateway.port, b"GARBAGE\x01 / HTTP/1.1\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 400 ")
    assert b"malformed HTTP request" in received


@pytest.mark.parametrize(
    "path",
    [
        b"/pub/job/adder/../other/1.0.0/x",
        b"/pub/job/adder/1.0.0/../../other/1.0.0/x",
        b"/pub/job/adder/1.0.0/%2e%2e/%2E%2E/other/1.0.0/x",
        b"/pub/job/adder/1.0.0/./x",
        b"/pub/job/adder%2F..%2Fother/1.0.0/x",
        b"/pub/job/adder%2f1.0.0/x",
        b"/pub/job/other%2F1.0.0/x",
        b"/pub/job/adder\\..\\other/1.0.0/x",
        b"/pub/job/adder/1.0.0%2F..%2F..%2Fother/x",
        b"/pub/job//other/1.0.0/x",
        b"/pub/job/%6fther/1.0.0/x",
        b"/pub/job/",
        b"/pub/job/adder",
    ],
)
def test_path_tricks_are_refused_and_reach_no_job(
    job: JobDouble, job2: JobDouble, start_gateway: Callable[..., RunningGateway], path: bytes
) -> None:
    routes = {
        ("adder", "1.0.0"): Route("adder", "1.0.0", replicas=[job.address]),
        ("other", "1.0.0"): Route("other", "1.0.0", replicas=[job2.address]),
    }
    gateway = start_gateway(StaticResolver(routes))
    received = raw_request(gateway.port, b"GET " + path + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    status = int(received.split(b" ", 2)[1])
    assert status in (400, 404), received
    assert job.requests == [] and job2.requests == []


def test_malformed_chunked_body_is_400_and_the_job_is_not_left_waiting(gateway: RunningGateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(
            b"POST /pub/job/adder/1.0.0/x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        )
        time.sleep(0.3)  # the gateway is streaming this body to the job by now
        sock.sendall(b"ZZZ-not-hex\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 400 ")
    assert b"malformed HTTP request body" in received


def test_upgrade_requests_are_answered_as_plain_http_and_closed(gateway: RunningGateway) -> None:
    received = raw_request(
        gateway.port,
        b"GET /pub/job/adder/1.0.0/ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    assert received.startswith(b"HTTP/1.1 200 ")
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    assert b"upgrade" not in body.lower().split(b'"headers"')[1].split(b"]]")[0]
