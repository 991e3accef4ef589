"""POST /api/v1/perform: arguments, errors and result serialisation, at the root and under /pub."""

from __future__ import annotations

import pytest
from tests.runtime.harness import RunningJob, StartJob
from tests.support.polling import wait_until


def test_perform_adds_at_root(adder: RunningJob) -> None:
    resp = adder.client.post("/api/v1/perform", json={"a": 40, "b": 2})
    assert resp.status_code == 200
    assert resp.json() == 42
    assert resp.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "prefix", ["/pub/job/adder/1.2.3", "/pub/job/adder/latest", "/pub/fatman/adder/1.x", "/pub/job/adder/0.0.1"]
)
def test_perform_is_served_under_pub_prefixes(adder: RunningJob, prefix: str) -> None:
    resp = adder.client.post(f"{prefix}/api/v1/perform", json={"a": 1, "b": 2})
    assert resp.status_code == 200, resp.text
    assert resp.json() == 3


def test_pub_prefix_with_another_job_name_is_not_found(adder: RunningJob) -> None:
    resp = adder.client.post("/pub/job/other/1.2.3/api/v1/perform", json={"a": 1})
    assert resp.status_code == 404
    assert resp.json()["type"] == "NotFound"


def test_perform_uses_defaults(adder: RunningJob) -> None:
    assert adder.client.post("/api/v1/perform", json={"a": 5}).json() == 5


def test_body_that_is_not_json_is_400(adder: RunningJob) -> None:
    resp = adder.client.post("/api/v1/perform", content=b"{not json")
    assert resp.status_code == 400
    body = resp.json()
    assert body["type"] == "InvalidInput"
    assert "not valid JSON" in body["error"]


def test_body_that_is_not_an_object_is_400(adder: RunningJob) -> None:
    resp = adder.client.post("/api/v1/perform", json=[1, 2])
    assert resp.status_code == 400
    assert resp.json()["type"] == "InvalidInput"
    assert "JSON object" in resp.json()["error"]


def test_unknown_argument_is_400_naming_it(adder: RunningJob) -> None:
    resp = adder.client.post("/api/v1/perform", json={"a": 1, "c": 2})
    assert resp.status_code == 400
    assert resp.json()["type"] == "InvalidInput"
    assert "'c'" in resp.json()["error"]


def test_missing_argument_is_400_naming_it(adder: RunningJob) -> None:
    resp = adder.client.post("/api/v1/perform", json={"b": 2})
    assert resp.status_code == 400
    assert "'a'" in resp.json()["error"]


def test_get_on_perform_is_405(adder: RunningJob) -> None:
    resp = adder.client.get("/api/v1/perform")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"


FAILING = """
class Failing:
    def perform(self, kind: str = "value"):
        if kind == "value":
            raise ValueError("bad value given")
        if kind == "type":
            return len(5)  # a TypeError raised inside user code
        return "ok"
"""


def test_exception_in_perform_is_500_with_error_and_type(start_job: StartJob) -> None:
    job = start_job(FAILING)
    resp = job.client.post("/api/v1/perform", json={"kind": "value"})
    assert resp.status_code == 500
    assert resp.json() == {"error": "bad value given", "type": "ValueError"}
    job.wait_for(lambda: "bad value given" in job.stderr())
    assert "Traceback" in job.stderr()


def test_type_error_raised_inside_perform_is_500_not_400(start_job: StartJob) -> None:
    job = start_job(FAILING)
    resp = job.client.post("/api/v1/perform", json={"kind": "type"})
    assert resp.status_code == 500
    assert resp.json()["type"] == "TypeError"


RESULTS = """
import dataclasses, datetime, decimal


class FakeArray:
    def tolist(self):
        return [[1, 2], [3, 4]]


class FakeScalar:
    def item(self):
        return 7


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Opaque:
    def __str__(self):
        return "opaque!"


class Results:
    def perform(self, kind: str):
        return {
            "array": FakeArray(),
            "scalar": FakeScalar(),
            "set": {3},
            "dataclass": Point(1, 2),
            "datetime": datetime.datetime(2024, 1, 2, 3, 4, 5),
            "decimal": decimal.Decimal("1.5"),
            "tuple_keys": {(1, 2): "x"},
            "opaque": Opaque(),
            "none": None,
        }[kind]
"""


EXPECTED = {
    "array": [[1, 2], [3, 4]],
    "scalar": 7,
    "set": [3],
    "dataclass": {"x": 1, "y": 2},
    "datetime": "2024-01-02T03:04:05",
    "decimal": 1.5,
    "tuple_keys": {"(1, 2)": "x"},
    "opaque": "opaque!",
    "none": None,
}


def test_results_are_made_json_serialisable(start_job: StartJob) -> None:
    job = start_job(RESULTS, entrypoint_class="Results")
    for kind, expected in EXPECTED.items():
        resp = job.client.post("/api/v1/perform", json={"kind": kind})
        assert resp.status_code == 200, (kind, resp.text)
        assert resp.json() == expected, kind


ASYNC = """
import asyncio


class AsyncJob:
    async def perform(self, n: int) -> dict:
        await asyncio.sleep(0.01)
        if n < 0:
            raise RuntimeError("negative")
        return {"double": n * 2}
"""


def test_async_perform_is_awaited(start_job: StartJob) -> None:
    job = start_job(ASYNC)
    assert job.client.post("/api/v1/perform", json={"n": 21}).json() == {"double": 42}
    bad = job.client.post("/api/v1/perform", json={"n": -1})
    assert bad.status_code == 500
    assert bad.json() == {"error": "negative", "type": "RuntimeError"}
    assert job.client.post("/api/v1/perform", json={"m": 1}).status_code == 400


MEETING = """
import threading

# Four calls meet here: each waits until all four are inside perform at once, which only threads allow.
meeting = threading.Barrier(4)
entered = threading.Event()
release = threading.Event()


class Meeting:
    def perform(self, action: str) -> str:
        if action == "meet":
            meeting.wait(timeout=60)  # BrokenBarrierError (a 500) unless the calls overlap
            return "met"
        if action == "hold":
            entered.set()
            return "released" if release.wait(timeout=60) else "never released"
        if action == "held":
            return "yes" if entered.is_set() else "no"
        release.set()
        return "released"
"""


def test_sync_perform_runs_in_threads_so_calls_overlap(start_job: StartJob) -> None:
    import concurrent.futures

    import httpx

    job = start_job(MEETING)

    def call(action: str) -> str:
        resp = httpx.post(f"{job.url}/api/v1/perform", json={"action": action}, timeout=120)
        assert resp.status_code == 200, resp.text
        return str(resp.json())

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert list(pool.map(call, ["meet"] * 4)) == ["met"] * 4

    # The loop is not blocked meanwhile: while one perform waits, probes and other calls are answered,
    # and it is one of those calls that lets it finish.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        held = pool.submit(call, "hold")
        wait_until(lambda: call("held") == "yes", what="the held call entered perform")
        assert job.client.get("/live").status_code == 200
        assert not held.done()
        assert call("release") == "released"
        assert held.result() == "released"


def test_parameters_lists_perform_signature(adder: RunningJob) -> None:
    for path in ("/api/v1/parameters", "/pub/job/adder/latest/api/v1/parameters"):
        resp = adder.client.get(path)
        assert resp.status_code == 200
        assert resp.json() == [{"name": "a", "type": "float"}, {"name": "b", "type": "float", "default": 0}]
