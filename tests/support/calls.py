"""Clients calling a deployed job through the gateway throughout a change, counting every failed call."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from tests.support.platform import RunningPlatform


class Callers:
    """`clients` threads, each with its own keep-alive connection, calling a job over and over.

    Each call goes to `path` of the job through the gateway, by `latest` and by the exact version in
    turn, and counts as failed unless it is a 200 whose JSON body passes `expect`. Use as a context
    manager around the change; `failures` lists every failed call (status and body, or the error).
    """

    def __init__(
        self,
        gateway_url: str,
        headers: dict[str, str],
        name: str,
        version: str,
        *,
        clients: int = 4,
        path: str = "/api/v1/perform",
        payload: dict[str, Any] | None = None,
        expect: Callable[[Any], bool] = lambda body: body == 42,
    ) -> None:
        self.urls = [f"{gateway_url}/pub/job/{name}/{v}{path}" for v in ("latest", version)]
        self.headers = headers
        self.payload = payload if payload is not None else {"a": 40, "b": 2}
        self.expect = expect
        self.ok = 0
        self.failures: list[str] = []
        self.answers: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        turn = 0
        with httpx.Client(headers=self.headers, timeout=30) as client:
            while not self._stop.is_set():
                url = self.urls[turn % 2]
                turn += 1
                try:
                    response = client.post(url, json=self.payload)
                    good = response.status_code == 200 and self.expect(response.json())
                    outcome = None if good else f"{url}: {response.status_code} {response.text[:200]}"
                except (httpx.HTTPError, ValueError) as exc:
                    outcome = f"{url}: {exc!r}"
                with self._lock:
                    if outcome is None:
                        self.ok += 1
                    else:
                        self.failures.append(outcome)

    def calls(self) -> int:
        with self._lock:
            return self.ok + len(self.failures)

    def __enter__(self) -> Callers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def generation_source(generation: str, import_delay: float = 0.0, broken: bool = False) -> str:
    """An adder job that says which generation it is at `/which`; the delay keeps a new one unready a while."""
    return (
        "import time\n"
        f"time.sleep({import_delay})\n"
        + ("raise RuntimeError('this generation is broken')\n" if broken else "")
        + "class Job:\n"
        "    def perform(self, a=0, b=0):\n"
        "        return a + b\n"
        "    def auxiliary_endpoints(self):\n"
        f"        return {{'/which': lambda: {generation!r}}}\n"
    )


def serving_generation(platform: RunningPlatform, name: str) -> str:
    """Which generation of `name` (a `generation_source` job) answers at `latest`."""
    answer = platform.http.post(f"{platform.url}/pub/job/{name}/latest/api/v1/which", json={})
    assert answer.status_code == 200, answer.text
    return str(answer.json())
