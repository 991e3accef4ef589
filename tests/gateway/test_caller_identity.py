"""What a job learns about its caller: the name the gateway vouches for, and the caller's token only by opt-in."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.gateway.conftest import RunningGateway
from tests.gateway.doubles import JobDouble

from trackside.gateway.resolver import Route, StaticResolver, route_from_can_call_job

URL = "/pub/job/adder/1.0.0/x"


def raw_headers_seen(port: int, head_lines: list[bytes]) -> list[tuple[str, str]]:
    """Send a GET with exactly these header lines; the header lines the job received, in order."""
    request = b"GET " + URL.encode() + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
    request += b"".join(line + b"\r\n" for line in head_lines) + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), received
    echo: dict[str, Any] = json.loads(body)
    return [(k.lower(), v) for k, v in echo["headers"]]


def gateway_for(
    start_gateway: Callable[..., RunningGateway], job: JobDouble, *, forward_caller_token: bool = False
) -> RunningGateway:
    route = Route("adder", "1.0.0", replicas=[job.address], forward_caller_token=forward_caller_token)
    return start_gateway(StaticResolver({("adder", "1.0.0"): route}, tokens={"tok-a": "User alice"}))


@pytest.mark.parametrize(
    "forged",
    [
        [b"X-Caller-Name: User admin"],
        [b"x-caller-name: User admin"],
        [b"X-CALLER-NAME: User admin", b"X-Caller-Name: ESC root"],
        [b"X_Caller_Name: User admin"],
        [b"X-Caller_Name: User admin"],
    ],
)
def test_the_job_sees_only_the_caller_the_gateway_authenticated(
    job: JobDouble, start_gateway: Callable[..., RunningGateway], forged: list[bytes]
) -> None:
    gateway = gateway_for(start_gateway, job)
    seen = raw_headers_seen(gateway.port, [b"X-Racetrack-Auth: tok-a", *forged])
    callers = [v for k, v in seen if k.replace("_", "-") == "x-caller-name"]
    assert callers == ["User alice"]


def test_a_call_without_an_authenticated_caller_carries_no_caller_name(
    job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(StaticResolver({("adder", "1.0.0"): Route("adder", "1.0.0", replicas=[job.address])}))
    seen = raw_headers_seen(gateway.port, [b"X-Caller-Name: User admin"])
    assert [k for k, _ in seen if k.replace("_", "-") == "x-caller-name"] == []


def test_the_callers_token_is_stripped_by_default_and_other_cookies_kept(
    job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = gateway_for(start_gateway, job)
    seen = raw_headers_seen(
        gateway.port,
        [
            b"X-Racetrack-Auth: tok-a",
            b"X-Racetrack-User-Auth: tok-a",
            b"X-Racetrack-Esc-Auth: tok-a",
            b"X_Racetrack_Auth: tok-a",
            b"Cookie: theme=dark; X-Racetrack-Auth=tok-a; lang=en",
        ],
    )
    assert "tok-a" not in json.dumps(seen)
    assert dict(seen)["cookie"] == "theme=dark; lang=en"


def test_a_bearer_token_is_stripped_when_it_is_the_callers_token_only(
    job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = gateway_for(start_gateway, job)
    as_token = raw_headers_seen(gateway.port, [b"Authorization: Bearer tok-a"])
    assert "authorization" not in dict(as_token)
    jobs_own = raw_headers_seen(gateway.port, [b"X-Racetrack-Auth: tok-a", b"Authorization: Basic am9iOnNlY3JldA=="])
    assert dict(jobs_own)["authorization"] == "Basic am9iOnNlY3JldA=="
    assert "x-racetrack-auth" not in dict(jobs_own)


def test_a_cookie_header_holding_only_the_token_is_dropped(
    job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = gateway_for(start_gateway, job)
    seen = raw_headers_seen(gateway.port, [b"Cookie: X-Racetrack-Auth=tok-a"])
    assert "cookie" not in dict(seen)


def test_a_job_that_opted_in_receives_the_callers_token(
    job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = gateway_for(start_gateway, job, forward_caller_token=True)
    seen = dict(
        raw_headers_seen(gateway.port, [b"X-Racetrack-Auth: tok-a", b"Cookie: theme=dark; X-Racetrack-Auth=tok-a"])
    )
    assert seen["x-racetrack-auth"] == "tok-a"
    assert seen["cookie"] == "theme=dark; X-Racetrack-Auth=tok-a"
    assert seen["x-caller-name"] == "User alice"


def test_the_opt_in_travels_in_the_lifecycles_can_call_job_answer() -> None:
    job = {"name": "adder", "version": "1.0.0", "replica_internal_names": ["127.0.0.1:1"]}
    assert route_from_can_call_job({"job": job, "caller": "User a"}).forward_caller_token is False
    opted = route_from_can_call_job({"job": {**job, "forward_caller_token": True}, "caller": "User a"})
    assert opted.forward_caller_token is True


def test_a_caller_name_cannot_break_the_header_block(
    job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    route = Route("adder", "1.0.0", replicas=[job.address])
    gateway = start_gateway(StaticResolver({("adder", "1.0.0"): route}, tokens={"tok": "User a@b\r\nX-Evil: 1"}))
    response = httpx.get(f"{gateway.url}{URL}", headers={"X-Racetrack-Auth": "tok"})
    sent = {k.lower(): v for k, v in response.json()["headers"]}
    assert "x-evil" not in sent
    assert sent["x-caller-name"] == "User a@b  X-Evil: 1"
