"""A pooled upstream connection is reused only when its last response's framing can be trusted.

Each job here is a `ScriptedJob` that misbehaves on one connection in a fixed order of events (it
reads the gateway's next request before sending what would poison it), so a gateway that reuses
a connection it should have dropped fails every time, not now and then.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from tests.gateway.conftest import RunningGateway
from tests.gateway.doubles import RawConnection, ScriptedJob

from trackside.gateway.resolver import Route, StaticResolver

JOB_URL = "/pub/job/adder/1.0.0"


def serve_fresh(conn: RawConnection) -> None:
    """How every connection after the first behaves: answer each request, naming its body."""
    while (request := conn.read_request()) is not None:
        conn.respond(200, b"fresh:" + request[2])


def answer_if_reused(conn: RawConnection, poison: bytes = b"") -> None:
    """The rest of a misbehaving first connection: a gateway that dropped it sends nothing more (right);
    one that reused it gets `poison` (what the job had left unsaid), then an answer from this connection."""
    if conn.read_request() is None:
        return
    conn.send(poison)
    conn.respond(200, b"on the reused connection")


def assert_next_call_is_fresh(client: httpx.Client, body: bytes = b"payload", path: str = "next") -> None:
    """The call after the misbehaving one is answered on a fresh connection, naming its body."""
    after = client.post(f"{JOB_URL}/{path}", content=body)
    assert (after.status_code, after.content) == (200, b"fresh:" + body)


@pytest.fixture
def scripted(
    start_gateway: Callable[..., RunningGateway],
) -> Iterator[Callable[..., tuple[RunningGateway, ScriptedJob]]]:
    jobs: list[ScriptedJob] = []

    def start(first_connection: Callable[[RawConnection], None]) -> tuple[RunningGateway, ScriptedJob]:
        def script(conn: RawConnection) -> None:
            (first_connection if conn.index == 0 else serve_fresh)(conn)

        job = ScriptedJob(script)
        jobs.append(job)
        routes = {("adder", "1.0.0"): Route("adder", "1.0.0", replicas=[job.address])}
        return start_gateway(StaticResolver(routes)), job

    yield start
    for job in jobs:
        job.stop()


@pytest.mark.parametrize(
    ("method", "head"),
    [
        ("GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 13\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 13\r\n\r\n"),
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n"),
        ("GET", b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ],
)
def test_a_bodiless_response_that_announces_a_body_is_not_reused(
    scripted: Callable[..., tuple[RunningGateway, ScriptedJob]], method: str, head: bytes
) -> None:
    def first(conn: RawConnection) -> None:
        conn.read_request()
        conn.send(head)
        # Reused: the body the job "forgot" arrives now, ahead of the answer to the new request.
        answer_if_reused(conn, poison=b'{"ok": false}')

    gateway, job = scripted(first)
    with httpx.Client(base_url=gateway.url) as client:
        first_response = client.request(method, f"{JOB_URL}/no-body")
        assert first_response.status_code == int(head.split(b" ")[1])
        assert first_response.content == b""
        assert_next_call_is_fresh(client)
    assert job.connections == 2


def test_bytes_after_a_complete_response_poison_its_connection(
    scripted: Callable[..., tuple[RunningGateway, ScriptedJob]],
) -> None:
    def first(conn: RawConnection) -> None:
        conn.read_request()
        # One write: the response, then the start of a second one nobody asked for.
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nX-Stray: 1\r\n")
        answer_if_reused(conn)

    gateway, job = scripted(first)
    with httpx.Client(base_url=gateway.url) as client:
        assert client.get(f"{JOB_URL}/x").content == b"ok"
        assert_next_call_is_fresh(client)


def test_bytes_arriving_on_an_idle_connection_close_it(
    scripted: Callable[..., tuple[RunningGateway, ScriptedJob]],
) -> None:
    def first(conn: RawConnection) -> None:
        conn.read_request()
        conn.respond(200, b"ok")
        conn.send(b"HTTP/1.1 200 OK\r\nX-Stray: 1\r\n")  # while the connection idles in the pool
        answer_if_reused(conn)

    gateway, job = scripted(first)
    with httpx.Client(base_url=gateway.url) as client:
        assert client.get(f"{JOB_URL}/x").content == b"ok"
        deadline = time.monotonic() + 10
        while gateway.on_loop(lambda: gateway.server.pool.idle_count(job.address)):
            assert time.monotonic() < deadline, "the gateway kept a connection that sent bytes while idle"
            time.sleep(0.01)
        assert_next_call_is_fresh(client)


def test_a_connection_that_answered_500_is_not_reused(
    scripted: Callable[..., tuple[RunningGateway, ScriptedJob]],
) -> None:
    """An app server that fails a request often closes its connection right after the 500 (uvicorn does)."""

    def first(conn: RawConnection) -> None:
        conn.read_request()
        conn.respond(500, b"boom")
        conn.read_head_only()  # closes as the next request arrives, its body unread

    gateway, job = scripted(first)
    with httpx.Client(base_url=gateway.url) as client:
        assert client.get(f"{JOB_URL}/fails").status_code == 500
        assert_next_call_is_fresh(client, b"not idempotent", path="deploy")


def test_a_response_without_a_length_ends_with_its_connection(
    scripted: Callable[..., tuple[RunningGateway, ScriptedJob]],
) -> None:
    def first(conn: RawConnection) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\nuntil the job closes")

    gateway, job = scripted(first)
    with httpx.Client(base_url=gateway.url) as client:
        assert client.get(f"{JOB_URL}/x").content == b"until the job closes"
        assert_next_call_is_fresh(client)
    assert job.connections == 2


def test_a_post_whose_body_was_not_sent_yet_is_retried_when_the_reused_connection_dies(
    scripted: Callable[..., tuple[RunningGateway, ScriptedJob]],
) -> None:
    """`Expect: 100-continue` keeps the body back: nothing of it reached the dead connection, so resend."""

    def first(conn: RawConnection) -> None:
        conn.read_request()
        conn.respond(200, b"warm")
        conn.read_head_only()  # the job's keep-alive ran out just as the POST arrived

    gateway, job = scripted(first)
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(b"GET %s/warm-up HTTP/1.1\r\nHost: t\r\n\r\n" % JOB_URL.encode())
        received = b""
        while not received.endswith(b"warm"):
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
        sock.sendall(
            b"POST %s/deploy HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n"
            % JOB_URL.encode()
        )
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        # Send the body only once the gateway has moved to a second connection (or has answered).
        sock.settimeout(0.05)
        deadline = time.monotonic() + 10
        early = b""
        while job.connections < 2 and not early:
            assert time.monotonic() < deadline, "the gateway neither retried nor answered"
            with contextlib.suppress(TimeoutError):
                early = sock.recv(65536)
        assert early == b"", early
        sock.settimeout(10)
        sock.sendall(b"payload")
        answer = b""
        while not answer.endswith(b"fresh:payload"):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
    posted = [(index, body) for index, line, _, body in job.requests if line.startswith(b"POST")]
    assert posted == [(0, b""), (1, b"payload")]  # the dead connection only ever saw its head
