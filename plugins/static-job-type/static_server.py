"""A static-site job: serves a directory of HTML and assets, honouring Trackside's job contract.

Stdlib only, so it runs with any Python 3.9+ (the local target uses the platform's interpreter, a
container uses the image's). Answers `/live` (with `deployment_timestamp`), `/ready`, `/health` and
`/metrics`, and serves its files both at the root and under `/pub/job/{JOB_NAME}/{version}/`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import mimetypes
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

JOB_NAME = os.environ.get("JOB_NAME", "")
JOB_VERSION = os.environ.get("JOB_VERSION", "")
DEPLOYMENT_TIMESTAMP = int(os.environ.get("JOB_DEPLOYMENT_TIMESTAMP") or 0)
STATE = {"requests": 0, "last_call": 0.0}


def strip_pub_prefix(path: str) -> str:
    """`/pub/job/NAME/ANYVERSION/rest` -> `/rest` (the gateway forwards the full path)."""
    prefix = f"/pub/job/{JOB_NAME}/"
    if JOB_NAME and path.startswith(prefix):
        rest = path[len(prefix) :]
        _, _, tail = rest.partition("/")
        return "/" + tail
    return path


class Handler(BaseHTTPRequestHandler):
    root: Path = Path(".")
    index: str = "index.html"
    server_version = "trackside-static/1.0"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's signature
        print(f"{self.address_string()} {format % args}", flush=True)

    def _send(self, status: int, body: bytes, content_type: str, head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _json(self, status: int, data: object, head: bool = False) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", head)

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib's naming
        self.do_GET(head=True)

    def do_GET(self, head: bool = False) -> None:  # noqa: N802
        path = strip_pub_prefix(unquote(urlsplit(self.path).path))
        if path == "/live":
            return self._json(200, {"live": True, "deployment_timestamp": DEPLOYMENT_TIMESTAMP}, head)
        if path == "/ready":
            return self._json(200, {"ready": True}, head)
        if path == "/health":
            return self._json(
                200,
                {
                    "service": "job",
                    "job_name": JOB_NAME,
                    "job_version": JOB_VERSION,
                    "status": "pass",
                    "deployment_timestamp": DEPLOYMENT_TIMESTAMP,
                },
                head,
            )
        if path == "/metrics":
            text = f"static_requests_total {STATE['requests']}\nlast_call_timestamp {int(STATE['last_call'])}\n"
            return self._send(200, text.encode(), "text/plain; version=0.0.4", head)
        STATE["requests"] += 1
        STATE["last_call"] = time.time()
        target = (self.root / path.lstrip("/")).resolve()
        try:
            target.relative_to(self.root)
        except ValueError:
            return self._json(404, {"error": f"{path} is outside the site"}, head)
        if target.is_dir():
            target = target / self.index
        if not target.is_file():
            return self._json(404, {"error": f"{path} not found"}, head)
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(200, target.read_bytes(), content_type, head)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", default=".", help="directory to serve")
    parser.add_argument("--index", default="index.html", help="file served for a directory")
    args = parser.parse_args()
    Handler.root = Path(args.root).resolve()
    Handler.index = args.index
    host = os.environ.get("JOB_HOST", "0.0.0.0")
    port = int(os.environ.get("PORT") or 7000)
    server = ThreadingHTTPServer((host, port), Handler)
    print(f"serving {Handler.root} on {host}:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
