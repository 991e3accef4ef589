"""A body always reaches the upstream with the framing the gateway parsed it with.

`Connection` names hop-by-hop headers for the proxy to drop; naming `Content-Length` there must not
turn a body into a second request read by the job (request smuggling past the caller's grant).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from tests.gateway.conftest import RunningGateway
from tests.gateway.doubles import JobDouble

from trackside.gateway.resolver import Route, StaticResolver

SMUGGLED = b"GET /pub/job/adder/1.0.0/admin-only HTTP/1.1\r\nHost: job\r\n\r\n"


def exchange(port: int, request: bytes) -> tuple[bytes, dict[str, Any]]:
    """Send one request and read one response; (status line, JSON body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while True:
            head, _, body = received.partition(b"\r\n\r\n")
            if _ and len(body) >= int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]):
                break
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    return head.split(b"\r\n", 1)[0], json.loads(body)


def echoed_headers(echo: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in echo["headers"]}


@pytest.mark.parametrize(
    "connection",
    [b"Content-Length", b"close, content-length", b"CONTENT-LENGTH, keep-alive", b"close,Content-Length ,x"],
)
def test_connection_cannot_strip_content_length_from_a_forwarded_body(
    gateway: RunningGateway, job: JobDouble, connection: bytes
) -> None:
    request = b"POST /pub/job/adder/1.0.0/x HTTP/1.1\r\nHost: t\r\nConnection: %s\r\nContent-Length: %d\r\n\r\n%s" % (
        connection,
        len(SMUGGLED),
        SMUGGLED,
    )
    status, echo = exchange(gateway.port, request)
    assert status.startswith(b"HTTP/1.1 200")
    assert echo["body_length"] == len(SMUGGLED)
    assert echoed_headers(echo)["content-length"] == str(len(SMUGGLED))
    assert [r["path"] for r in job.requests] == ["/pub/job/adder/1.0.0/x"]


def test_connection_cannot_strip_transfer_encoding_from_a_chunked_body(gateway: RunningGateway) -> None:
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
    request = (
        b"POST /pub/job/adder/1.0.0/x HTTP/1.1\r\nHost: t\r\nConnection: close, Transfer-Encoding\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunked
    )
    status, echo = exchange(gateway.port, request)
    assert status.startswith(b"HTTP/1.1 200")
    assert echo["body_length"] == len(SMUGGLED)
    assert echoed_headers(echo)["transfer-encoding"] == "chunked"


def test_connection_cannot_strip_the_headers_the_gateway_sets(
    job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    routes = {("adder", "1.0.0"): Route("adder", "1.0.0", replicas=[job.address])}
    gateway = start_gateway(StaticResolver(routes, tokens={"tok": "User alice"}))
    request = (
        b"GET /pub/job/adder/1.0.0/x HTTP/1.1\r\nHost: t\r\nX-Racetrack-Auth: tok\r\nX-Request-Tracing-Id: t-1\r\n"
        b"Connection: close, X-Request-Tracing-Id, X-Caller-Name, X-Forwarded-For, Host\r\n\r\n"
    )
    status, echo = exchange(gateway.port, request)
    assert status.startswith(b"HTTP/1.1 200")
    sent = echoed_headers(echo)
    assert sent["x-request-tracing-id"] == "t-1"
    assert sent["x-caller-name"] == "User alice"
    assert sent["x-forwarded-for"] == "127.0.0.1"
    assert sent["host"] == job.address


def test_the_fallback_upstream_gets_the_body_with_its_framing_too(
    job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(StaticResolver({}), fallback=("127.0.0.1", job.port))
    request = (
        b"POST /lifecycle/api/v1/deploy HTTP/1.1\r\nHost: t\r\nConnection: close, Content-Length\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(SMUGGLED), SMUGGLED)
    )
    status, echo = exchange(gateway.port, request)
    assert status.startswith(b"HTTP/1.1 200")
    assert echo["body_length"] == len(SMUGGLED)
    assert [r["path"] for r in job.requests] == ["/lifecycle/api/v1/deploy"]
