"""Job logging as Racetrack's runner sets it up: `racetrack` logger at LOG_LEVEL, root at INFO, stdout."""

from __future__ import annotations

import json
import re

from tests.runtime.harness import StartJob

LOGGING = """
import logging

racetrack = logging.getLogger("racetrack")
library = logging.getLogger("some.library")


class Job:
    def perform(self, word: str = "hello") -> str:
        racetrack.debug("debug from racetrack: %s", word)
        racetrack.info("info from racetrack")
        library.debug("debug from a library")
        library.warning("warning from a library")
        logging.getLogger("racetrack.child").error("error from a child")
        return word

    def fail(self) -> None:
        raise ValueError("it broke")

    def auxiliary_endpoints(self):
        return {"/fail": self.fail}
"""

LINE = r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] "


def test_racetrack_logger_prints_debug_and_the_root_logger_info_by_default(start_job: StartJob) -> None:
    job = start_job(LOGGING)
    assert job.client.post("/api/v1/perform", json={"word": "w1"}).json() == "w1"
    job.wait_for(lambda: "error from a child" in job.stdout())
    out = job.stdout()
    assert re.search(LINE + r"DEBUG debug from racetrack: w1$", out, re.M), out
    assert re.search(LINE + r"INFO  info from racetrack$", out, re.M), out
    assert re.search(LINE + r"WARN  warning from a library$", out, re.M), out
    assert re.search(LINE + r"ERROR error from a child$", out, re.M), out
    assert "debug from a library" not in out  # the root logger stays at INFO


def test_log_level_raises_the_racetrack_loggers_threshold(start_job: StartJob) -> None:
    job = start_job(LOGGING, env={"LOG_LEVEL": "warning"})
    job.client.post("/api/v1/perform", json={})
    job.wait_for(lambda: "error from a child" in job.stdout())
    assert "from racetrack" not in job.stdout()


def test_caller_name_and_tracing_id_are_added_to_records_logged_during_a_request(start_job: StartJob) -> None:
    job = start_job(LOGGING, env={"LOG_CALLER_NAME": "true"})
    job.client.post("/api/v1/perform", json={}, headers={"X-Caller-Name": "dave", "X-Request-Tracing-Id": "tr-1"})
    job.wait_for(lambda: "caller_name=dave" in job.stdout() and "POST /api/v1/perform 200" in job.stdout())
    assert re.search(r"INFO  info from racetrack, tracing_id=tr-1, caller_name=dave$", job.stdout(), re.M)
    assert re.search(r"POST /api/v1/perform 200 .* tracing_id=tr-1 caller_name=dave$", job.stdout(), re.M)


def test_structured_logs_are_one_json_object_per_line(start_job: StartJob) -> None:
    job = start_job(LOGGING, env={"LOG_STRUCTURED": "true", "LOG_CALLER_NAME": "true"})
    job.client.post("/api/v1/perform", json={"word": "w2"}, headers={"X-Caller-Name": "erin"})
    failed = job.client.post("/api/v1/fail", json={})
    assert failed.json() == {"error": "it broke", "type": "ValueError"}
    job.wait_for(lambda: "it broke" in job.stdout() and '"POST /api/v1/perform 200"' in job.stdout())
    records = [json.loads(line) for line in job.stdout().splitlines() if line.startswith("{")]
    debug = next(r for r in records if r["msg"] == "debug from racetrack: w2")
    assert debug["lvl"] == "DEBUG" and debug["caller_name"] == "erin"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", debug["time"])
    error = next(r for r in records if "it broke" in r["msg"])
    assert error["lvl"] == "ERROR" and "Traceback" in error["exc_info"] and "ValueError: it broke" in error["exc_info"]
    access = next(r for r in records if r["msg"] == "POST /api/v1/perform 200")
    assert access["lvl"] == "INFO" and access["caller_name"] == "erin" and access["duration_ms"] >= 0
    assert any(r["msg"].startswith("job Job loaded in ") for r in records)  # the runtime's own messages too


def test_a_load_failure_is_a_structured_error_record(start_job: StartJob) -> None:
    source = "class Job:\n    def __init__(self):\n        raise OSError('no model file')\n"
    job = start_job(source, env={"LOG_STRUCTURED": "true"})
    assert job.client.get("/live").status_code == 500
    job.wait_for(lambda: "no model file" in job.stdout())
    record = next(json.loads(line) for line in job.stdout().splitlines() if "no model file" in line)
    assert record["lvl"] == "ERROR" and record["msg"].startswith("job failed to load: OSError: no model file")
    assert "Traceback" in record["exc_info"]


def test_an_unknown_log_level_stops_the_runtime_with_a_clear_error(start_job: StartJob, tmp_path) -> None:
    import subprocess
    import sys

    from tests.runtime.harness import SRC

    result = subprocess.run(
        [sys.executable, "-m", "trackside.runtime", "--entrypoint-path", "job.py"],
        env={"PYTHONPATH": str(SRC), "LOG_LEVEL": "verbose", "PORT": "0"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "env var LOG_LEVEL must be one of debug, info, warn, warning, error, crit, critical, off" in result.stderr
