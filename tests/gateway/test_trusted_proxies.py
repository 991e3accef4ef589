"""Forwarding headers say what the gateway saw, unless an operator-trusted proxy said it first."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from tests.gateway.conftest import RunningGateway
from tests.gateway.doubles import JobDouble

from trackside.gateway.forwarding import TrustedProxies
from trackside.gateway.resolver import Route, StaticResolver

FORGED = [
    b"X-Forwarded-For: 6.6.6.6",
    b"x-forwarded-for: 6.6.6.7",
    b"X_Forwarded_For: 6.6.6.8",
    b"X-Forwarded-Proto: https",
    b"X-Forwarded-Host: evil.example",
    b"X-Real-IP: 6.6.6.9",
    b"X-Real_IP: 6.6.6.10",
    b"Forwarded: for=6.6.6.11;proto=https",
    b"X-Trackside-Gateway: guessed",
]


def headers_seen(port: int, path: bytes, lines: list[bytes]) -> list[tuple[str, str]]:
    request = b"GET " + path + b" HTTP/1.1\r\nHost: front.example:8080\r\nConnection: close\r\n"
    request += b"".join(line + b"\r\n" for line in lines) + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), received
    echo: dict[str, Any] = json.loads(body)
    return [(k.lower(), v) for k, v in echo["headers"]]


def forwarding(seen: list[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in seen:
        plain = name.replace("_", "-")
        if plain.startswith(("x-forwarded-", "x-real-ip", "forwarded", "x-trackside-gateway")):
            found.setdefault(plain, []).append(value)
    return found


@pytest.fixture
def routes(job: JobDouble) -> dict[tuple[str, str], Route]:
    return {("adder", "1.0.0"): Route("adder", "1.0.0", replicas=[job.address])}


def test_a_clients_forwarding_headers_are_replaced_by_what_the_gateway_saw(
    routes: dict[tuple[str, str], Route], start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(StaticResolver(routes))
    seen = forwarding(headers_seen(gateway.port, b"/pub/job/adder/1.0.0/x", FORGED))
    assert seen == {
        "x-forwarded-for": ["127.0.0.1"],
        "x-forwarded-proto": ["http"],
        "x-forwarded-host": ["front.example:8080"],
    }


def test_a_trusted_proxy_may_say_who_the_client_is(
    routes: dict[tuple[str, str], Route], start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(StaticResolver(routes), trusted_proxies=TrustedProxies(["127.0.0.0/8"]))
    seen = forwarding(
        headers_seen(
            gateway.port,
            b"/pub/job/adder/1.0.0/x",
            [
                b"X-Forwarded-For: 203.0.113.7, 10.1.2.3",
                b"X-Forwarded-Proto: https",
                b"X-Forwarded-Host: api.example.com",
                b"X-Real-IP: 203.0.113.7",
                b"X_Forwarded_For: 6.6.6.6",
                b"X-Trackside-Gateway: guessed",
            ],
        )
    )
    assert seen == {
        "x-forwarded-for": ["203.0.113.7, 10.1.2.3, 127.0.0.1"],
        "x-forwarded-proto": ["https"],
        "x-forwarded-host": ["api.example.com"],
        "x-real-ip": ["203.0.113.7"],
    }


def test_the_lifecycle_fallback_gets_the_gateways_secret_and_nothing_a_client_forged(
    job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(StaticResolver({}), fallback=("127.0.0.1", job.port), fallback_secret="s3cret")
    seen = forwarding(headers_seen(gateway.port, b"/lifecycle/api/v1/users/login", FORGED))
    assert seen == {
        "x-forwarded-for": ["127.0.0.1"],
        "x-forwarded-proto": ["http"],
        "x-forwarded-host": ["front.example:8080"],
        "x-trackside-gateway": ["s3cret"],
    }


def test_jobs_never_see_the_gateways_secret(
    routes: dict[tuple[str, str], Route], job: JobDouble, start_gateway: Callable[..., RunningGateway]
) -> None:
    gateway = start_gateway(StaticResolver(routes), fallback=("127.0.0.1", job.port), fallback_secret="s3cret")
    seen = forwarding(headers_seen(gateway.port, b"/pub/job/adder/1.0.0/x", []))
    assert "x-trackside-gateway" not in seen


def test_the_client_address_is_the_rightmost_hop_no_trusted_proxy_vouches_for() -> None:
    trusted = TrustedProxies(["10.0.0.0/8", "fd00::/8"])
    assert trusted.client_address("6.6.6.6, 203.0.113.7, 10.0.0.2", "10.0.0.1") == "203.0.113.7"
    assert trusted.client_address("10.0.0.3, 10.0.0.2", "10.0.0.1") == "10.0.0.3"
    assert "10.9.9.9" in trusted and "fd00::1" in trusted and "::ffff:10.0.0.1" in trusted
    assert "11.0.0.1" not in trusted and "not an address" not in trusted
    assert "127.0.0.1" not in TrustedProxies()
