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


# Racetrack's runner gives WSGI apps the full `/pub/job/NAME/VERSION/api/v1/webview/...` path (its
# PathPrefixerWSGIMiddleware), so apps written for it route on `base_url + '/...'`.
RACETRACK_WSGI = """
class Job:
    def perform(self):
        return 1

    def webview_app(self, base_url):
        self.calls = []

        def app(environ, start_response):
            path = environ["PATH_INFO"]
            self.calls.append(path)
            if path == base_url + "/":
                status, body = "200 OK", f"index script={environ['SCRIPT_NAME']!r} path={path}"
            elif path == base_url + "/calls":
                status, body = "200 OK", ",".join(self.calls)
            else:
                status, body = "404 Not Found", f"requested path was not found: {path}"
            start_response(status, [("Content-Type", "text/plain")])
            return [body.encode()]
        return app
"""


def test_wsgi_app_routing_on_the_full_path_gets_it(start_job: StartJob) -> None:
    job = start_job(RACETRACK_WSGI)
    index = job.client.get("/pub/job/adder/latest/api/v1/webview/")
    assert (index.status_code, index.text) == (200, "index script='' path=/pub/job/adder/1.2.3/api/v1/webview/")
    # Reached at the root too: the path is still built from base_url, as Racetrack builds it.
    assert job.client.get("/api/v1/webview/").status_code == 200
    missing = job.client.get("/pub/job/adder/1.2.3/api/v1/webview/nowhere")
    assert (missing.status_code, missing.text) == (
        404,
        "requested path was not found: /pub/job/adder/1.2.3/api/v1/webview/nowhere",
    )
    # Once the app answered on full paths, it is asked only with full paths.
    calls = job.client.get("/api/v1/webview/calls").text.split(",")
    assert calls == [
        "/",
        "/pub/job/adder/1.2.3/api/v1/webview/",
        "/pub/job/adder/1.2.3/api/v1/webview/",
        "/pub/job/adder/1.2.3/api/v1/webview/nowhere",
        "/pub/job/adder/1.2.3/api/v1/webview/calls",
    ]


def test_wsgi_app_answering_on_mount_paths_keeps_them(start_job: StartJob) -> None:
    job = start_job(WSGI)
    for _ in range(2):
        page = job.client.get("/pub/job/adder/1.2.3/api/v1/webview/a")
        assert "script=/pub/job/adder/1.2.3/api/v1/webview path=/a " in page.text


def test_wsgi_paths_can_be_fixed_to_full_or_mount(start_job: StartJob) -> None:
    full = start_job(WSGI, env={"JOB_WEBVIEW_WSGI_PATHS": "full"})
    assert "script= path=/pub/job/adder/1.2.3/api/v1/webview/a " in full.client.get("/api/v1/webview/a").text
    mount = start_job(RACETRACK_WSGI, env={"JOB_WEBVIEW_WSGI_PATHS": "mount"})
    page = mount.client.get("/pub/job/adder/1.2.3/api/v1/webview/")
    assert (page.status_code, page.text) == (404, "requested path was not found: /")


FLASK_BOTH = """
from flask import Flask, request, url_for


class Job:
    def perform(self):
        return 1

    def webview_app(self, base_url):
        app = Flask(__name__)

        @app.route(base_url + "/hello")
        def hello():
            return {"path": request.path, "link": url_for("hello")}

        return app.wsgi_app
"""


def test_flask_app_with_racetrack_style_routes_builds_correct_links(start_job: StartJob) -> None:
    job = start_job(FLASK_BOTH)
    answer = job.client.get("/pub/job/adder/latest/api/v1/webview/hello").json()
    assert answer == {
        "path": "/pub/job/adder/1.2.3/api/v1/webview/hello",
        "link": "/pub/job/adder/1.2.3/api/v1/webview/hello",
    }
