"""SIGTERM/SIGINT: stop accepting, let in-flight requests finish, exit 0."""

from __future__ import annotations

import signal
import threading
import time

import httpx
from tests.runtime.harness import StartJob

SLOW = """
import time


class Slow:
    def perform(self, seconds: float) -> str:
        print("perform started", flush=True)
        time.sleep(seconds)
        return "finished"
"""


def test_sigterm_finishes_in_flight_request_and_exits_0(start_job: StartJob) -> None:
    job = start_job(SLOW)
    result: dict[str, httpx.Response] = {}

    def call() -> None:
        result["resp"] = httpx.post(f"{job.url}/api/v1/perform", json={"seconds": 0.7}, timeout=10)

    thread = threading.Thread(target=call)
    thread.start()
    job.wait_for(lambda: "perform started" in job.stdout())  # in flight, however slow the machine
    job.proc.send_signal(signal.SIGTERM)
    thread.join(10)
    assert result["resp"].status_code == 200
    assert result["resp"].json() == "finished"
    assert job.proc.wait(10) == 0
    assert "stopped" in job.stdout()


def test_sigint_on_idle_server_exits_0_quickly(start_job: StartJob) -> None:
    job = start_job(SLOW)
    with httpx.Client(base_url=job.url) as keep_alive:  # an idle keep-alive connection must not hold it up
        keep_alive.get("/live")
        started = time.monotonic()
        assert job.stop(signal.SIGINT) == 0
    assert time.monotonic() - started < 2
