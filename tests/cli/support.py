"""Helpers for the CLI tests: an in-process CLI runner and a scripted HTTP server.

`ScriptedApi` backs a real HTTP server on a loopback port that answers each request with the next
scripted response for its method and path and records what it received. It stands in for the
lifecycle API's documented *shapes* (docs/architecture.md, "Compatibility contracts") so the CLI's side of the contract
(paths, headers, bodies, polling, error display) is pinned without the platform;
`test_deploy_e2e.py` runs the same commands against the real platform.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from typer.testing import CliRunner, Result

from trackside.cli.main import app


class Cli:
    """Runs `trackside ARGS...` in-process; stdout and stderr are captured separately."""

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), input=input)


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ScriptedApi:
    url: str
    script: dict[tuple[str, str], deque[tuple[int, Any, str]]] = field(default_factory=lambda: defaultdict(deque))
    requests: list[Recorded] = field(default_factory=list)

    def answer(
        self, method: str, path: str, body: Any, status: int = 200, content_type: str = "application/json"
    ) -> None:
        """Queue a response; the last one queued for a route is repeated once the queue is down to it."""
        self.script[(method, path)].append((status, body, content_type))

    def received(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]


def handler_for(api: ScriptedApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            api.requests.append(
                Recorded(self.command, path, query, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            queue = api.script.get((self.command, path))
            if not queue:
                status, payload, content_type = (
                    404,
                    {"error": f"no route {self.command} {path}", "type": "NotFound"},
                    "application/json",
                )
            else:
                status, payload, content_type = queue.popleft() if len(queue) > 1 else queue[0]
            data = (
                payload
                if isinstance(payload, bytes)
                else (json.dumps(payload).encode() if content_type == "application/json" else str(payload).encode())
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = _serve

    return Handler
