"""Helpers to run the job runtime as a real subprocess serving a job class written into a tmp dir."""

from __future__ import annotations

import signal
import subprocess
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "src"
RUNTIME_PACKAGE = SRC / "trackside" / "runtime"


@dataclass
class RunningJob:
    proc: subprocess.Popen[bytes]
    port: int
    job_dir: Path
    stdout_path: Path
    stderr_path: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f"condition not met in {timeout}s; stderr:\n{self.stderr()}")

    def wait_listening(self, timeout: float = 10) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"runtime exited with {self.proc.returncode}; stderr:\n{self.stderr()}")
            try:
                self.client.get("/live")
                return True
            except httpx.TransportError:
                return False

        self.wait_for(up, timeout)

    def wait_loaded(self, timeout: float = 10) -> None:
        """Until /ready is 200 or /live reports the load failure."""

        def loaded() -> bool:
            return self.client.get("/ready").status_code == 200 or self.client.get("/live").status_code == 500

        self.wait_for(loaded, timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def write_job(job_dir: Path, source: str, filename: str = "job.py") -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / filename).write_text(textwrap.dedent(source))


StartJob = Callable[..., RunningJob]

ADDER = """
class Adder:
    \"\"\"Adds two numbers.\"\"\"

    def perform(self, a: float, b: float = 0) -> float:
        \"\"\"Return a + b.\"\"\"
        return a + b

    def docs_input_example(self) -> dict:
        return {"a": 40, "b": 2}
"""
