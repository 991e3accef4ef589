"""webview_app(base_url): WSGI and ASGI apps mounted at /api/v1/webview/, plus the static/ dir."""

from __future__ import annotations

from tests.runtime.harness import StartJob

WSGI = """
class Job:
    def perform(self):
        return 1

    def webview_app(self, base_url):
        def app(environ, start_response):
            body = (
                f"wsgi base={base_url} script={environ['SCRIPT_NAME']} path={environ['PATH_INFO']} "
                f"query={environ['QUERY_STRING']} method={environ['REQUEST_METHOD']} "
                f"body={environ['wsgi.input'].read().decode()} ua={environ.get('HTTP_USER_AGENT', '')}"
            ).encode()
            start_response("201 Created", [("Content-Type", "text/html"), ("X-Extra", "yes")])
            return [body]
        return app
"""

STATIC = {"static/style.css": "h1{color:red}\n"}


def test_wsgi_webview_gets_mount_and_path(start_job: StartJob) -> None:
    job = start_job(WSGI, files=STATIC)
    resp = job.client.get("/pub/job/adder/1.2.3/api/v1/webview/page/1?x=2", headers={"User-Agent": "t"})
    assert resp.status_code == 201
    assert resp.headers["content-type"] == "text/html"
    assert resp.headers["x-extra"] == "yes"
    assert resp.text == (
        "wsgi base=/pub/job/adder/1.2.3/api/v1/webview script=/pub/job/adder/1.2.3/api/v1/webview "
        "path=/page/1 query=x=2 method=GET body= ua=t"
    )
    posted = job.client.post("/api/v1/webview/form", content=b"a=1")
    assert "script=/api/v1/webview path=/form" in posted.text
    assert "method=POST body=a=1" in posted.text


def test_webview_without_trailing_slash_redirects(start_job: StartJob) -> None:
    job = start_job(WSGI)
    resp = job.client.get("/pub/job/adder/1.2.3/api/v1/webview")
    assert resp.status_code == 307
    assert resp.headers["location"] == "webview/"


def test_webview_static_dir_is_served(start_job: StartJob) -> None:
    job = start_job(WSGI, files=STATIC)
    resp = job.client.get("/pub/job/adder/1.2.3/api/v1/webview/static/style.css")
    assert (resp.status_code, resp.text) == (200, "h1{color:red}\n")
    assert resp.headers["content-type"] == "text/css"


ASGI = """
class App:
    def __init__(self, base_url):
        self.base_url = base_url

    async def __call__(self, scope, receive, send):
        assert scope["type"] == "http"
        message = await receive()
        text = (
            f"asgi root={scope['root_path']} path={scope['path']} "
            f"query={scope['query_string'].decode()} body={message['body'].decode()}"
        )
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b"!"})


class Job:
    def perform(self):
        return 1

    def webview_app(self, base_url):
        return App(base_url)
"""


def test_asgi_webview_gets_root_path_and_full_path(start_job: StartJob) -> None:
    job = start_job(ASGI, entrypoint_class="Job")
    resp = job.client.post("/pub/job/adder/1.2.3/api/v1/webview/x?y=1", content=b"hi")
    assert resp.status_code == 200
    assert resp.text == (
        "asgi root=/pub/job/adder/1.2.3/api/v1/webview path=/pub/job/adder/1.2.3/api/v1/webview/x query=y=1 body=hi!"
    )


FASTAPI = """
from fastapi import FastAPI


class Job:
    def perform(self):
        return 1

    def webview_app(self, base_url):
        app = FastAPI()

        @app.get("/")
        def index():
            return {"page": "index", "base": base_url}

        @app.get("/items/{item}")
        async def item(item: int):
            return {"item": item}

        return app
"""


def test_fastapi_webview_routes_under_the_mount(start_job: StartJob) -> None:
    job = start_job(FASTAPI)
    index = job.client.get("/pub/job/adder/1.2.3/api/v1/webview/")
    assert index.status_code == 200, index.text
    assert index.json() == {"page": "index", "base": "/pub/job/adder/1.2.3/api/v1/webview"}
    assert job.client.get("/api/v1/webview/items/5").json() == {"item": 5}
    assert job.client.get("/api/v1/webview/items/x").status_code == 422
