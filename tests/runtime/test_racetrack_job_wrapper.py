"""`racetrack_job_wrapper`: Racetrack's job API (call_job(self, ...), ...) for job code, on Trackside's runtime."""

from __future__ import annotations

import ast
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.runtime.harness import SRC, StartJob

COMPAT_PACKAGE = SRC / "racetrack_job_wrapper"

CALLEE = """
class Callee:
    def perform(self, x: int) -> dict:
        headers = self.request_context.get().headers
        return {
            "double": 2 * x,
            "auth": headers.get("X-Racetrack-Auth"),
            "tracing": headers.get("X-Request-Tracing-Id"),
            "caller": headers.get("X-Caller-Name"),
            "custom_tracing": headers.get("X-Trace"),
        }
"""

CALLER = """
import asyncio

from racetrack_job_wrapper.call import call_job, call_job_async, call_job_coroutine
from racetrack_job_wrapper.entrypoint import JobEntrypoint
from racetrack_job_wrapper.log.logs import get_logger

logger = get_logger(__name__)


class Caller(JobEntrypoint):
    def perform(self, x: int) -> dict:
        logger.info("calling callee")
        return call_job(self, "callee", "/api/v1/perform", {"x": x}, version="1.0.0")

    async def twice(self, x: int) -> list:
        first = await call_job_async(self, "callee", payload={"x": x}, version="1.0.0")
        second = await call_job_coroutine(self, "callee", payload={"x": x + 1}, version="1.0.0")
        return [first["double"], second["double"], first["caller"]]

    def fail(self) -> str:
        try:
            call_job(self, "callee", payload={"wrong": 1}, version="1.0.0")
        except RuntimeError as exc:
            return f"{type(exc).__name__}: {exc}"
        return "no error"

    def auxiliary_endpoints(self):
        return {"/twice": self.twice, "/fail": self.fail}
"""


def test_call_job_forwards_token_tracing_id_and_caller(start_job: StartJob) -> None:
    callee = start_job(CALLEE, env={"JOB_NAME": "callee", "JOB_VERSION": "1.0.0"})
    caller = start_job(CALLER, env={"JOB_NAME": "caller", "PUB_URL": f"{callee.url}/pub", "AUTH_TOKEN": "tok"})
    response = caller.client.post(
        "/api/v1/perform", json={"x": 21}, headers={"x-request-tracing-id": "t-7", "X-Caller-Name": "alice"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"double": 42, "auth": "tok", "tracing": "t-7", "caller": "alice", "custom_tracing": None}
    caller.wait_for(lambda: "INFO  calling callee" in caller.stdout())


def test_call_job_sends_no_empty_headers_when_the_request_has_none(start_job: StartJob) -> None:
    callee = start_job(CALLEE, env={"JOB_NAME": "callee", "JOB_VERSION": "1.0.0"})
    caller = start_job(CALLER, env={"JOB_NAME": "caller", "PUB_URL": f"{callee.url}/pub"})
    answer = caller.client.post("/api/v1/perform", json={"x": 1}).json()
    assert (answer["auth"], answer["tracing"], answer["caller"]) == (None, None, None)


def test_header_names_come_from_request_tracing_header_and_caller_name_header(start_job: StartJob) -> None:
    callee = start_job(CALLEE, env={"JOB_NAME": "callee", "JOB_VERSION": "1.0.0"})
    env = {"JOB_NAME": "caller", "PUB_URL": f"{callee.url}/pub", "REQUEST_TRACING_HEADER": "X-Trace"}
    caller = start_job(CALLER, env=env)
    answer = caller.client.post("/api/v1/perform", json={"x": 1}, headers={"x-trace": "custom-9"}).json()
    assert answer["custom_tracing"] == "custom-9"


def test_async_variants_work_inside_async_endpoints(start_job: StartJob) -> None:
    callee = start_job(CALLEE, env={"JOB_NAME": "callee", "JOB_VERSION": "1.0.0"})
    caller = start_job(CALLER, env={"JOB_NAME": "caller", "PUB_URL": f"{callee.url}/pub"})
    answer = caller.client.post("/api/v1/twice", json={"x": 5}, headers={"X-Caller-Name": "bob"})
    assert answer.json() == [10, 12, "bob"]


def test_a_failed_call_is_a_runtime_error_naming_both_jobs_and_the_status(start_job: StartJob) -> None:
    callee = start_job(CALLEE, env={"JOB_NAME": "callee", "JOB_VERSION": "1.0.0"})
    caller = start_job(CALLER, env={"JOB_NAME": "caller", "PUB_URL": f"{callee.url}/pub"})
    message = caller.client.post("/api/v1/fail", json={}).json()
    assert message.startswith('JobCallFailed: failed to call job "callee 1.0.0" by caller: calling ')
    assert f"{callee.url}/pub/job/callee/1.0.0/api/v1/perform failed with HTTP 400" in message
    assert "unexpected argument 'wrong'" in message


def test_a_missing_pub_url_is_a_runtime_error(start_job: StartJob) -> None:
    caller = start_job(CALLER, env={"JOB_NAME": "caller"})
    message = caller.client.post("/api/v1/fail", json={}).json()
    assert message == 'JobCallFailed: failed to call job "callee 1.0.0" by caller: PUB_URL is not set: ' + (
        "call_job needs the gateway's address"
    )


class _AsyncPub(BaseHTTPRequestHandler):
    """Stands in for the gateway's async-call API (Racetrack's pub: /async/new/job/..., /async/task/ID/poll)."""

    polls = 0
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).seen.append(("POST", self.path, dict(self.headers), body))
        self._answer(202, {"task_id": "task-1"})

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen.append(("GET", self.path, dict(self.headers), b""))
        type(self).polls += 1
        if type(self).polls < 3:
            self._answer(202, {"status": "running"})
        else:
            self._answer(200, {"result": 42})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def async_pub() -> Iterator[str]:
    _AsyncPub.polls = 0
    _AsyncPub.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AsyncPub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/pub"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_async_job_call_starts_a_task_and_polls_until_the_result(start_job: StartJob, async_pub: str) -> None:
    caller = start_job(
        """
from racetrack_job_wrapper.call import async_job_call


class Caller:
    def perform(self) -> object:
        return async_job_call(self, "slow", "/api/v1/perform", {"n": 1}, version="2.0.0")
""",
        env={"JOB_NAME": "caller", "PUB_URL": async_pub, "AUTH_TOKEN": "tok"},
    )
    answer = caller.client.post("/api/v1/perform", json={}, headers={"X-Request-Tracing-Id": "t-async"})
    assert answer.json() == {"result": 42}
    started = _AsyncPub.seen[0]
    assert started[:2] == ("POST", "/pub/async/new/job/slow/2.0.0/api/v1/perform")
    assert json.loads(started[3]) == {"n": 1}
    assert started[2]["X-Racetrack-Auth"] == "tok" and started[2]["X-Request-Tracing-Id"] == "t-async"
    assert [s[1] for s in _AsyncPub.seen[1:]] == ["/pub/async/task/task-1/poll"] * 3


def test_the_compat_package_imports_only_the_standard_library_and_the_runtime() -> None:
    offenders = []
    for path in sorted(COMPAT_PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name} imports {n}" for n in names if n.split(".")[0] not in sys.stdlib_module_names]
    assert offenders == []
    runtime_imports = (COMPAT_PACKAGE / "_runtime.py").read_text()
    assert '"trackside_runtime.' in runtime_imports and '"trackside.runtime.' in runtime_imports


def test_compat_package_is_shipped_in_the_wheel() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(SRC).parent / "pyproject.toml").read_text())
    assert "src/racetrack_job_wrapper" in pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
