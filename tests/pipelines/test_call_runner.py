"""The call steps' HTTP client: what it sends, what it makes of answers, and stale keep-alive connections.

The peer is a `ScriptedJob` standing where the gateway's `/pub` is: a raw socket server that can
close a kept-alive connection exactly as the next request arrives, which no real server does on
purpose (the real gateway path is `test_call_steps_e2e.py`). It reads each request before acting, so
nothing here depends on timing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.gateway.doubles import RawConnection, ScriptedJob

from trackside.config import Settings
from trackside.lifecycle.governance import auth_service
from trackside.pipelines.executors.call import CallOutcome, CallRequest, CallRunner, OwnerTokens
from trackside.store.database import Database

OWNER = {"type": "internal", "name": "pipelines", "scopes": ["call_job"]}


def request(path: str = "/api/v1/perform", headers: dict[str, str] | None = None) -> CallRequest:
    return CallRequest("run1", "step", 2, "adder", "0.0.1", path, "POST", {"a": 1, "b": 2}, headers or {})


@pytest.fixture
def tokens(tmp_path: Path, db: Database) -> OwnerTokens:
    settings = Settings(data_dir=tmp_path / "data", database_url=db.url)
    return OwnerTokens(auth_service(settings, db), db)


@pytest.fixture
def peer() -> Iterator[list[ScriptedJob]]:
    started: list[ScriptedJob] = []
    yield started
    for job in started:
        job.stop()


def calls(tokens: OwnerTokens, job: ScriptedJob, *sent: CallRequest) -> list[CallOutcome]:
    """Send the requests one after the other from one runner (one connection pool)."""

    async def send() -> list[CallOutcome]:
        runner = CallRunner(tokens, timeout=30)
        runner.pub_url = f"http://{job.address}/pub"
        try:
            return [await runner.call(one, OWNER) for one in sent]
        finally:
            await runner.close()

    return asyncio.run(send())


def answer_all(conn: RawConnection) -> None:
    while (read := conn.read_request()) is not None:
        conn.respond(200, json.dumps({"seen": json.loads(read[2])}).encode(), b"Content-Type: application/json\r\n")


def test_a_call_sends_the_payload_the_owner_s_token_and_its_idempotency_key(
    tokens: OwnerTokens, peer: list[ScriptedJob]
) -> None:
    job = ScriptedJob(answer_all)
    peer.append(job)
    [outcome] = calls(tokens, job, request(headers={"X-Extra": "yes"}))
    assert outcome.ok and outcome.outputs == {"seen": {"a": 1, "b": 2}}
    [(_, line, headers, body)] = job.requests
    assert line == b"POST /pub/job/adder/0.0.1/api/v1/perform HTTP/1.1"
    assert headers["idempotency-key"] == "run1/step/2" and headers["x-extra"] == "yes"
    assert headers["x-racetrack-auth"] and headers["content-type"] == "application/json"
    assert headers["host"] == job.address and json.loads(body) == {"a": 1, "b": 2}
    assert "HTTP 200 in " in outcome.log and "payload: " in outcome.log


def test_a_path_with_spaces_and_line_breaks_is_percent_encoded_not_sent_raw(
    tokens: OwnerTokens, peer: list[ScriptedJob]
) -> None:
    job = ScriptedJob(answer_all)
    peer.append(job)
    [outcome] = calls(tokens, job, request("/api/v1/perform?q=a b\r\nX-Injected: 1"))
    assert outcome.ok
    [(_, line, headers, _)] = job.requests
    assert line == b"POST /pub/job/adder/0.0.1/api/v1/perform?q=a%20b%0D%0AX-Injected:%201 HTTP/1.1"
    assert "x-injected" not in headers


def test_a_header_value_with_a_line_break_fails_the_call_before_anything_is_sent(
    tokens: OwnerTokens, peer: list[ScriptedJob]
) -> None:
    job = ScriptedJob(answer_all)
    peer.append(job)
    [outcome] = calls(tokens, job, request(headers={"X-Note": "a\r\nX-Injected: 1"}))
    assert not outcome.ok and outcome.error is not None
    assert "header X-Note" in outcome.error and "line break" in outcome.error
    assert job.requests == []


def test_a_kept_alive_connection_the_server_closes_as_a_call_arrives_is_replaced_and_the_call_resent(
    tokens: OwnerTokens, peer: list[ScriptedJob]
) -> None:
    def first(conn: RawConnection) -> None:
        if conn.index > 0:
            answer_all(conn)
            return
        conn.read_request()
        conn.respond(200, b'{"n": 1}')
        conn.read_request()  # the second call arrives on the kept-alive connection: close unanswered
        conn.sock.close()

    job = ScriptedJob(first)
    peer.append(job)
    one, two = calls(tokens, job, request(), request())
    assert one.ok and two.ok and two.outputs == {"seen": {"a": 1, "b": 2}}
    assert [index for index, *_ in job.requests] == [0, 0, 1]
    assert job.requests[1][2]["idempotency-key"] == job.requests[2][2]["idempotency-key"]


def test_a_fresh_connection_closed_unanswered_fails_the_call_without_resending_it(
    tokens: OwnerTokens, peer: list[ScriptedJob]
) -> None:
    def close_unanswered(conn: RawConnection) -> None:
        conn.read_request()
        conn.sock.close()

    job = ScriptedJob(close_unanswered)
    peer.append(job)
    [outcome] = calls(tokens, job, request())
    assert not outcome.ok and outcome.error is not None
    assert outcome.error.startswith("calling adder 0.0.1 failed: ")
    assert len(job.requests) == 1


def test_a_chunked_answer_is_read_whole_and_an_error_answer_names_its_error(
    tokens: OwnerTokens, peer: list[ScriptedJob]
) -> None:
    def chunked_then_error(conn: RawConnection) -> None:
        conn.read_request()
        conn.send(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n4\r\n: 5}\r\n0\r\n\r\n')
        conn.read_request()
        conn.respond(422, b'{"error": "b is missing", "type": "InvalidInput"}')

    job = ScriptedJob(chunked_then_error)
    peer.append(job)
    ok, failed = calls(tokens, job, request(), request())
    assert ok.ok and ok.outputs == {"a": 5}
    assert not failed.ok and failed.error == "HTTP 422: b is missing" and failed.status_code == 422


def test_a_step_s_own_framing_headers_are_not_sent_twice_and_its_content_type_is_kept(
    tokens: OwnerTokens, peer: list[ScriptedJob]
) -> None:
    job = ScriptedJob(answer_all)
    peer.append(job)
    own = {"Content-Length": "999", "Host": "elsewhere", "Content-Type": "application/json; charset=utf-8"}
    [outcome] = calls(tokens, job, request(headers=own))
    assert outcome.ok
    [(_, _, headers, body)] = job.requests
    assert headers["content-length"] == str(len(body)) and headers["host"] == job.address
    assert headers["content-type"] == "application/json; charset=utf-8"
