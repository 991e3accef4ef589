"""perform is optional (as in Racetrack): a class with only auxiliary endpoints or a webview is served."""

from __future__ import annotations

from tests.runtime.harness import StartJob

AUX_ONLY = """
class Tools:
    def explain(self, x: float) -> dict:
        return {"x": x}

    def auxiliary_endpoints(self):
        return {"/explain": self.explain}
"""


def test_a_class_with_only_auxiliary_endpoints_is_ready_and_serves_them(start_job: StartJob) -> None:
    job = start_job(AUX_ONLY)
    assert job.client.get("/ready").status_code == 200
    assert job.client.get("/health").json()["status"] == "pass"
    assert job.client.post("/api/v1/explain", json={"x": 2}).json() == {"x": 2}


def test_perform_without_a_perform_method_is_a_clear_404(start_job: StartJob) -> None:
    job = start_job(AUX_ONLY)
    response = job.client.post("/pub/job/adder/1.2.3/api/v1/perform", json={})
    assert response.status_code == 404
    assert response.json() == {
        "error": "job class Tools has no perform() method, so /api/v1/perform is not offered; "
        "its endpoints: POST /api/v1/explain",
        "type": "NotFound",
    }
    assert job.client.get("/api/v1/parameters").json() == []
    paths = job.client.get("/openapi.json").json()["paths"]
    assert "/api/v1/perform" not in paths and "/api/v1/explain" in paths


def test_a_webview_only_class_is_served(start_job: StartJob) -> None:
    job = start_job(
        """
class Page:
    def webview_app(self, base_url):
        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/html")])
            return [b"<h1>page</h1>"]
        return app
"""
    )
    assert job.client.get("/api/v1/webview/").text == "<h1>page</h1>"
    missing = job.client.post("/api/v1/perform", json={})
    assert missing.status_code == 404
    assert "its endpoints: GET /api/v1/webview/" in missing.json()["error"]


def test_a_webview_app_of_none_means_no_webview(start_job: StartJob) -> None:
    job = start_job(
        """
class Job:
    def perform(self):
        return 1

    def webview_app(self, base_url):
        return None  # what Racetrack's JobEntrypoint base class returns
""",
        files={"static/a.css": "h1{}"},
    )
    assert job.client.get("/ready").status_code == 200
    assert job.client.get("/api/v1/webview/").status_code == 404
    assert job.client.get("/api/v1/webview/static/a.css").status_code == 404  # static/ belongs to a webview
