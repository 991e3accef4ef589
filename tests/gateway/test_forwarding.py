"""The gateway forwards job calls to the job unchanged, apart from the headers a proxy must manage."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.gateway.conftest import RunningGateway
from tests.gateway.doubles import JobDouble

from trackside.gateway.resolver import Route, StaticResolver


def headers_of(echo: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in echo["headers"]}


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_every_method_reaches_the_job_under_its_prefix_with_the_resolved_version(
    gateway: RunningGateway, method: str
) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        response = client.request(method, "/pub/job/adder/latest/api/v1/perform", content=b'{"a": 1}')
    assert response.status_code == 200
    echo = response.json()
    assert echo["method"] == method
    assert echo["path"] == "/pub/job/adder/1.0.0/api/v1/perform"
    assert echo["body"] == '{"a": 1}'


def test_query_string_is_forwarded_verbatim(gateway: RunningGateway) -> None:
    response = httpx.get(f"{gateway.url}/pub/job/adder/1.0.0/search?q=a%20b&x=1&x=2&empty=")
    assert response.json()["path"] == "/pub/job/adder/1.0.0/search?q=a%20b&x=1&x=2&empty="


def test_legacy_fatman_prefix_reaches_the_job_path(gateway: RunningGateway) -> None:
    response = httpx.get(f"{gateway.url}/pub/fatman/adder/1.0.0/health")
    assert response.json()["path"] == "/pub/job/adder/1.0.0/health"


def test_job_root_without_a_path_is_forwarded_to_the_prefix(gateway: RunningGateway) -> None:
    response = httpx.get(f"{gateway.url}/pub/job/adder/1.0.0")
    assert response.json()["path"] == "/pub/job/adder/1.0.0"


def test_double_slashes_are_collapsed_in_the_job_path_only(gateway: RunningGateway) -> None:
    response = httpx.get(f"{gateway.url}/pub/job/adder/1.0.0//api///v1/perform")
    assert response.json()["path"] == "/pub/job/adder/1.0.0/api/v1/perform"


def test_tracing_id_is_made_when_missing_and_echoed(gateway: RunningGateway) -> None:
    response = httpx.get(f"{gateway.url}/pub/job/adder/1.0.0/x")
    sent = headers_of(response.json())["x-request-tracing-id"]
    assert len(sent) == 32 and int(sent, 16) >= 0
    assert sent[12] == "4"  # a uuid4
    assert response.headers["x-request-tracing-id"] == sent


def test_given_tracing_id_is_kept_and_echoed(gateway: RunningGateway) -> None:
    response = httpx.get(f"{gateway.url}/pub/job/adder/1.0.0/x", headers={"X-Request-Tracing-Id": "trace-123"})
    assert headers_of(response.json())["x-request-tracing-id"] == "trace-123"
    assert response.headers.get_list("x-request-tracing-id") == ["trace-123"]


def test_forwarded_headers_are_set_by_the_gateway_and_client_headers_kept(gateway: RunningGateway) -> None:
    response = httpx.get(
        f"{gateway.url}/pub/job/adder/1.0.0/x",
        headers={"X-Custom": "kept", "X-Forwarded-For": "10.0.0.9", "X-Racetrack-Auth": "secret-token"},
    )
    sent = headers_of(response.json())
    assert sent["x-custom"] == "kept"
    assert sent["x-forwarded-for"] == "127.0.0.1"  # what the gateway saw; the client is no trusted proxy
    assert sent["x-forwarded-proto"] == "http"
    assert sent["x-forwarded-host"] == f"127.0.0.1:{gateway.port}"
    assert "x-racetrack-auth" not in sent  # the caller's token reaches a job only by its opt-in


def test_hop_by_hop_headers_are_not_forwarded(gateway: RunningGateway) -> None:
    response = httpx.get(
        f"{gateway.url}/pub/job/adder/1.0.0/x",
        headers={"Connection": "keep-alive, X-Secret-Hop", "X-Secret-Hop": "1", "Keep-Alive": "timeout=5", "TE": "x"},
    )
    sent = headers_of(response.json())
    for name in ("x-secret-hop", "keep-alive", "te"):
        assert name not in sent
    assert sent.get("connection", "keep-alive") == "keep-alive"


def test_caller_name_comes_from_the_route_whatever_the_client_sent(
    job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    routes = {("adder", "1.0.0"): Route("adder", "1.0.0", replicas=[job.address])}
    gateway = start_gateway(StaticResolver(routes, tokens={"tok": "User alice"}))
    url = f"{gateway.url}/pub/job/adder/1.0.0/x"
    by_route = httpx.get(url, headers={"X-Racetrack-Auth": "tok"})
    assert headers_of(by_route.json())["x-caller-name"] == "User alice"
    by_client = httpx.get(url, headers={"X-Racetrack-Auth": "tok", "X-Caller-Name": "pipeline step 3"})
    assert headers_of(by_client.json())["x-caller-name"] == "User alice"


def test_head_response_has_headers_and_no_body_and_the_connection_stays_usable(gateway: RunningGateway) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        head = client.head("/pub/job/adder/1.0.0/x")
        assert head.status_code == 200
        assert int(head.headers["content-length"]) > 0
        assert head.content == b""
        after = client.get("/pub/job/adder/1.0.0/after-head")
        assert after.json()["path"] == "/pub/job/adder/1.0.0/after-head"


def test_upstream_connections_are_reused_across_requests(gateway: RunningGateway, job: JobDouble) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        for i in range(20):
            assert client.post("/pub/job/adder/1.0.0/x", content=f"call {i}").status_code == 200
    # also across client connections: each request on a new client connection
    for _ in range(5):
        assert httpx.get(f"{gateway.url}/pub/job/adder/1.0.0/x").status_code == 200
    assert job.connections == 1


def test_replicas_are_called_round_robin(
    job: JobDouble, job2: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    routes = {("adder", "1.0.0"): Route("adder", "1.0.0", replicas=[job.address, job2.address])}
    gateway = start_gateway(StaticResolver(routes))
    with httpx.Client(base_url=gateway.url) as client:
        served = [client.get("/pub/job/adder/1.0.0/x").json()["replica"] for _ in range(6)]
    assert served == ["replica-1", "replica-2"] * 3


def test_absolute_location_to_the_job_becomes_host_relative(gateway: RunningGateway) -> None:
    response = httpx.get(f"{gateway.url}/pub/job/adder/1.0.0/redirect")
    assert response.status_code == 302
    assert response.headers["location"] == "/pub/job/adder/1.0.0/target"
    assert response.headers["x-other"] == "http://elsewhere/x"


def test_location_to_another_host_is_left_alone(gateway: RunningGateway) -> None:
    response = httpx.get(f"{gateway.url}/pub/job/adder/1.0.0/foreign-redirect")
    assert response.headers["location"] == "http://example.org/somewhere"


def test_job_status_codes_pass_through(gateway: RunningGateway) -> None:
    for code in (201, 204, 400, 404, 500, 503):
        response = httpx.get(f"{gateway.url}/pub/job/adder/1.0.0/status/{code}")
        assert response.status_code == code


def test_chunked_request_body_is_forwarded_chunked(gateway: RunningGateway) -> None:
    def parts() -> Any:
        yield b"hello "
        yield b"chunked "
        yield b"world"

    response = httpx.post(f"{gateway.url}/pub/job/adder/1.0.0/x", content=parts())
    echo = response.json()
    assert echo["body"] == "hello chunked world"
    assert headers_of(echo)["transfer-encoding"] == "chunked"
    assert "content-length" not in headers_of(echo)


def test_close_delimited_response_reaches_the_client_whole(gateway: RunningGateway) -> None:
    with httpx.Client(base_url=gateway.url) as client:
        response = client.get("/pub/job/adder/1.0.0/close-delimited")
        assert response.content == b"until the end"
        assert client.get("/pub/job/adder/1.0.0/x").status_code == 200


def test_chunked_response_is_forwarded(gateway: RunningGateway) -> None:
    response = httpx.get(f"{gateway.url}/pub/job/adder/1.0.0/stream?chunks=4&size=3")
    assert response.content == b"AAABBBCCCDDD"
    assert response.headers["transfer-encoding"] == "chunked"


def test_expect_100_continue_is_answered_and_the_body_forwarded(gateway: RunningGateway) -> None:
    import socket

    body = b'{"a": 1}'
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(
            b"POST /pub/job/adder/1.0.0/x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        interim = sock.recv(1024)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        received = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n") :]
        while b'"body"' not in received or not received.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 ")
    assert b'"body": "{\\"a\\": 1}"' in received
    assert b"expect" not in received.lower().split(b"\r\n\r\n", 1)[1]


def test_pipelined_requests_are_answered_in_order(gateway: RunningGateway) -> None:
    import socket

    requests = (
        b"".join(b"GET /pub/job/adder/1.0.0/n%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(3))
        + b"POST /pub/job/adder/1.0.0/last HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
    )
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(requests)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.count(b"HTTP/1.1 200 OK") == 4
    paths = [p for p in (b"/n0", b"/n1", b"/n2", b"/last")]
    positions = [received.index(b"/pub/job/adder/1.0.0" + p) for p in paths]
    assert positions == sorted(positions)
