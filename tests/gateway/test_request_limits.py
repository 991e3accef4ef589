"""The gateway bounds what it reads of a request head: URL, header count and head size (414 / 431)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from tests.gateway.conftest import RunningGateway
from tests.gateway.doubles import JobDouble

from trackside.gateway.resolver import Route, StaticResolver
from trackside.gateway.server import RequestLimits

PATH = b"/pub/job/adder/1.0.0/x"


def send_and_read(port: int, request: bytes, pieces: int = 1) -> tuple[int, dict[str, Any]]:
    """Send `request` (in `pieces` writes) and read the whole answer; (status, JSON body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        size = -(-len(request) // pieces)
        for start in range(0, len(request), size):
            sock.sendall(request[start : start + size])
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
            if b"\r\n\r\n" in received:
                head, _, body = received.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    break
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def get(path: bytes, headers: list[bytes] | None = None) -> bytes:
    lines = b"".join(h + b"\r\n" for h in headers or [])
    return b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n" + lines + b"\r\n"


@pytest.fixture
def small(job: JobDouble, start_gateway: Callable[..., RunningGateway]) -> RunningGateway:
    """A gateway with small limits, to test their edges exactly."""
    routes = {("adder", "1.0.0"): Route("adder", "1.0.0", replicas=[job.address])}
    return start_gateway(
        StaticResolver(routes), limits=RequestLimits(max_url_bytes=1024, max_head_bytes=4096, max_headers=10)
    )


def test_defaults_are_like_large_client_header_buffers() -> None:
    assert RequestLimits() == RequestLimits(max_url_bytes=16 * 1024, max_head_bytes=64 * 1024, max_headers=100)


def test_a_one_megabyte_path_is_414_not_500(gateway: RunningGateway, job: JobDouble) -> None:
    status, body = send_and_read(gateway.port, get(PATH + b"/" + b"a" * 1_000_000))
    assert status == 414
    assert body["type"] == "RequestUriTooLong" and "16384" in body["error"]
    assert job.requests == []
    assert httpx.get(f"{gateway.url}/pub/job/adder/1.0.0/x").status_code == 200


def test_the_url_limit_is_exact_and_holds_for_a_url_sent_byte_by_byte(small: RunningGateway) -> None:
    at_limit = PATH + b"/" + b"u" * (1024 - len(PATH) - 1)
    assert send_and_read(small.port, get(at_limit), pieces=len(at_limit))[0] == 200
    status, body = send_and_read(small.port, get(at_limit + b"u"), pieces=200)
    assert status == 414 and body["type"] == "RequestUriTooLong"


def test_more_headers_than_the_limit_is_431(small: RunningGateway) -> None:
    nine = [b"X-H%d: v" % i for i in range(9)]  # with Host: 10 header lines
    assert send_and_read(small.port, get(PATH, nine))[0] == 200
    status, body = send_and_read(small.port, get(PATH, [*nine, b"X-One-Too-Many: v"]))
    assert status == 431
    assert body["type"] == "RequestHeaderFieldsTooLarge" and "10 header" in body["error"]


@pytest.mark.parametrize("pieces", [1, 3, 700])
def test_a_head_over_the_size_limit_is_431_however_it_arrives(small: RunningGateway, pieces: int) -> None:
    just_over = b"X-Big: " + b"b" * (4097 - len(get(PATH, [b"X-Big: "])))
    assert len(get(PATH, [just_over])) == 4097
    status, body = send_and_read(small.port, get(PATH, [just_over]), pieces=pieces)
    assert status == 431 and body["type"] == "RequestHeaderFieldsTooLarge"
    just_under = b"X-Big: " + b"b" * (4096 - len(get(PATH, [b"X-Big: "])))
    assert len(get(PATH, [just_under])) == 4096
    assert send_and_read(small.port, get(PATH, [just_under]), pieces=pieces)[0] == 200


def test_a_body_in_the_first_read_does_not_count_against_the_head(small: RunningGateway) -> None:
    body = b"x" * 200_000
    request = b"POST " + PATH + b" HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    status, echo = send_and_read(small.port, request)
    assert status == 200 and echo["body_length"] == len(body)


@pytest.mark.parametrize("what", ["url", "header"])
def test_an_endless_head_is_cut_off_without_reading_it_all(gateway: RunningGateway, what: str) -> None:
    """A 32 MiB URL or header: the gateway answers and closes long before the client is done sending."""
    start = b"GET " + PATH + b"/" if what == "url" else b"GET " + PATH + b" HTTP/1.1\r\nHost: t\r\nX-Big: "
    piece = b"z" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(start)
        try:
            while sent < 32 * 1024 * 1024:
                sock.sendall(piece)
                sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert sent < 32 * 1024 * 1024, "the gateway read a 32 MiB request head to its end"
    assert httpx.get(f"{gateway.url}/pub/job/adder/1.0.0/x").status_code == 200
