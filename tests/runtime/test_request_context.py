"""Racetrack's request context: `entrypoint.request_context` / `request_extra`, headers in any case."""

from __future__ import annotations

from tests.runtime.harness import StartJob

CONTEXT = """
import asyncio


class Job:
    def perform(self, key: str = "x") -> dict:
        request = self.request_context.get()
        extra = self.request_extra.get()
        seen_before = dict(extra)
        extra[key] = True
        return {
            "caller": request.headers.get("X-Caller-Name"),
            "caller_lower": request.headers.get("x-caller-name"),
            "caller_upper": request.headers["X-CALLER-NAME"],
            "has_tracing": "X-Request-Tracing-Id" in request.headers,
            "missing": request.headers.get("X-Nothing", "default"),
            "custom": request.headers.getlist("x-custom"),
            "method": request.method,
            "path": request.url.path,
            "query": request.query_params,
            "cookies": request.cookies,
            "extra_before": seen_before,
        }

    async def later(self) -> dict:
        await asyncio.sleep(0)
        request = self.request_context.get()
        return {"caller": request.headers.get("X-Caller-Name"), "extra": self.request_extra.get()}

    def auxiliary_endpoints(self):
        return {"/later": self.later}
"""


def test_perform_reads_the_request_through_request_context(start_job: StartJob) -> None:
    job = start_job(CONTEXT)
    response = job.client.post(
        "/pub/job/adder/latest/api/v1/perform?x=1&y=two",
        json={"key": "k1"},
        headers={
            "x-CALLER-name": "alice",
            "X-Request-Tracing-Id": "t-9",
            "X-Custom": "a, b",
            "Cookie": "session=abc; theme=dark",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "caller": "alice",
        "caller_lower": "alice",
        "caller_upper": "alice",
        "has_tracing": True,
        "missing": "default",
        "custom": ["a", "b"],
        "method": "POST",
        "path": "/pub/job/adder/latest/api/v1/perform",
        "query": {"x": "1", "y": "two"},
        "cookies": {"session": "abc", "theme": "dark"},
        "extra_before": {},
    }


def test_request_extra_is_fresh_for_every_request(start_job: StartJob) -> None:
    job = start_job(CONTEXT)
    for key in ("first", "second", "third"):
        answer = job.client.post("/api/v1/perform", json={"key": key}, headers={"X-Caller-Name": "z"}).json()
        assert answer["extra_before"] == {}


def test_async_endpoints_see_their_own_request(start_job: StartJob) -> None:
    job = start_job(CONTEXT)
    answer = job.client.post("/api/v1/later", json={}, headers={"X-Caller-Name": "bob"}).json()
    assert answer == {"caller": "bob", "extra": {}}


def test_request_context_is_a_context_var_with_no_request_outside_calls(start_job: StartJob) -> None:
    job = start_job(
        """
from contextvars import ContextVar


class Job:
    def __init__(self):
        self.at_init = getattr(self, "request_context", None)

    def perform(self) -> dict:
        return {
            "is_context_var": isinstance(self.request_context, ContextVar),
            "set_after_init": self.at_init is None,
        }
"""
    )
    assert job.client.post("/api/v1/perform", json={}).json() == {"is_context_var": True, "set_after_init": True}


def test_wsgi_webview_sees_the_request_context(start_job: StartJob) -> None:
    job = start_job(
        """
class Job:
    def perform(self):
        return 1

    def webview_app(self, base_url):
        def app(environ, start_response):
            caller = self.request_context.get().headers.get("X-Caller-Name")
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [f"caller={caller}".encode()]
        return app
"""
    )
    page = job.client.get("/api/v1/webview/", headers={"x-caller-name": "carol"})
    assert page.text == "caller=carol"


def test_request_extra_behaves_like_a_context_var_of_a_dict_per_request(start_job: StartJob) -> None:
    job = start_job(
        """
class Job:
    def __init__(self):
        self.errors = []

    def perform(self, value: str) -> dict:
        extra = self.request_extra
        before = dict(extra.get())
        extra.get()["value"] = value
        token = extra.set({"replaced": value})
        replaced = extra.get()
        extra.reset(token)
        return {"before": before, "replaced": replaced, "after": extra.get()}

    def outside(self) -> str:
        import threading

        found = []
        thread = threading.Thread(target=lambda: found.append(self.request_extra.get("no request")))
        thread.start()
        thread.join()
        return found[0]

    def auxiliary_endpoints(self):
        return {"/outside": self.outside}
"""
    )
    for value in ("a", "b"):
        assert job.client.post("/api/v1/perform", json={"value": value}).json() == {
            "before": {},
            "replaced": {"replaced": value},
            "after": {"value": value},
        }
    assert job.client.post("/api/v1/outside", json={}).json() == "no request"
