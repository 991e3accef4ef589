"""Two-stage start, /live, /ready, /health, and how load failures are reported."""

from __future__ import annotations

import subprocess
import sys

from tests.runtime.harness import SRC, RunningJob, StartJob


def test_live_ready_health_when_loaded(adder: RunningJob) -> None:
    for base in ("", "/pub/job/adder/1.2.3", "/pub/fatman/adder/latest"):
        live = adder.client.get(f"{base}/live")
        assert live.status_code == 200
        assert live.json() == {"live": True, "deployment_timestamp": 1700000000}
        ready = adder.client.get(f"{base}/ready")
        assert (ready.status_code, ready.json()) == (200, {"ready": True})
    health = adder.client.get("/health")
    assert health.status_code == 200
    assert health.json() == {
        "service": "job",
        "job_name": "adder",
        "job_version": "1.2.3",
        "live": True,
        "ready": True,
        "status": "pass",
        "error": None,
        "git_version": "abc123",
        "deployed_by_racetrack_version": "2.0.0",
        "deployment_timestamp": 1700000000,
        "job_type_version": "3.11-1.0",
    }


SLOW_INIT = """
import time


class SlowStart:
    def __init__(self):
        time.sleep(1.5)

    def perform(self):
        return "up"
"""


def test_server_answers_live_before_the_class_is_loaded(start_job: StartJob) -> None:
    job = start_job(SLOW_INIT, wait=False)
    live = job.client.get("/live")
    assert live.status_code == 200
    assert live.json()["live"] is True
    ready = job.client.get("/ready")
    assert (ready.status_code, ready.json()) == (500, {"ready": False})
    assert job.client.get("/health").status_code == 500
    not_yet = job.client.post("/api/v1/perform", json={})
    assert not_yet.status_code == 503
    assert not_yet.json()["type"] == "Unavailable"
    job.wait_loaded()
    assert job.client.get("/ready").status_code == 200
    assert job.client.post("/api/v1/perform", json={}).json() == "up"


BROKEN_IMPORT = """
import definitely_not_installed_module_xyz


class Job:
    def perform(self):
        return 1
"""


def test_import_failure_makes_live_500_with_the_error(start_job: StartJob) -> None:
    job = start_job(BROKEN_IMPORT)
    live = job.client.get("/live")
    assert live.status_code == 500
    body = live.json()
    assert body["live"] is False
    assert body["deployment_timestamp"] == 1700000000
    assert body["error"].startswith("ModuleNotFoundError: No module named 'definitely_not_installed_module_xyz'")
    assert "job.py:2" in body["error"]
    assert job.client.get("/ready").status_code == 500
    health = job.client.get("/health")
    assert health.status_code == 500
    assert health.json()["status"] == "fail"
    assert "definitely_not_installed_module_xyz" in health.json()["error"]
    perform = job.client.post("/api/v1/perform", json={})
    assert perform.status_code == 500
    assert "definitely_not_installed_module_xyz" in perform.json()["error"]
    assert "Traceback" in job.stderr()
    assert "definitely_not_installed_module_xyz" in job.stderr()


BROKEN_INIT = """
class Job:
    def __init__(self):
        raise RuntimeError("missing config file settings.yaml")

    def perform(self):
        return 1
"""


def test_constructor_failure_makes_live_500(start_job: StartJob) -> None:
    job = start_job(BROKEN_INIT)
    live = job.client.get("/live")
    assert live.status_code == 500
    assert live.json()["error"].startswith("RuntimeError: missing config file settings.yaml (job.py:4 in __init__)")


TWO_CLASSES = """
class Helper:
    pass


class Model:
    def perform(self, x: int) -> int:
        return x * 10
"""


def test_two_classes_without_entrypoint_class_is_an_error_naming_them(start_job: StartJob) -> None:
    job = start_job(TWO_CLASSES)
    live = job.client.get("/live")
    assert live.status_code == 500
    error = live.json()["error"]
    assert "Helper" in error and "Model" in error
    assert "entrypoint_class" in error


def test_entrypoint_class_picks_the_class(start_job: StartJob) -> None:
    job = start_job(TWO_CLASSES, entrypoint_class="Model")
    assert job.client.post("/api/v1/perform", json={"x": 4}).json() == 40


def test_unknown_entrypoint_class_is_an_error_listing_the_classes(start_job: StartJob) -> None:
    job = start_job(TWO_CLASSES, entrypoint_class="Nope")
    error = job.client.get("/live").json()["error"]
    assert "'Nope' not found" in error
    assert "Helper, Model" in error


def test_module_without_classes_is_an_error(start_job: StartJob) -> None:
    job = start_job("def perform():\n    return 1\n")
    assert "no class defined in job.py" in job.client.get("/live").json()["error"]


def test_imported_classes_do_not_count_as_defined(start_job: StartJob) -> None:
    source = "from collections import OrderedDict\n\n\nclass Job:\n    def perform(self):\n        return 'one'\n"
    job = start_job(source)
    assert job.client.post("/api/v1/perform", json={}).json() == "one"


def test_job_module_imports_siblings_from_its_directory(start_job: StartJob) -> None:
    source = "from helpers import triple\n\n\nclass Job:\n    def perform(self, x: int):\n        return triple(x)\n"
    job = start_job(source, files={"helpers.py": "def triple(x):\n    return 3 * x\n"})
    assert job.client.post("/api/v1/perform", json={"x": 2}).json() == 6


def test_bad_env_var_exits_with_a_message_naming_it(tmp_path: object) -> None:
    env = {"PYTHONPATH": str(SRC), "JOB_MAX_CONCURRENCY": "lots", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "trackside.runtime", "--entrypoint-path", "job.py"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "JOB_MAX_CONCURRENCY" in proc.stderr and "'lots'" in proc.stderr


def test_missing_entrypoint_path_argument_is_a_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "trackside.runtime"],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "--entrypoint-path" in proc.stderr
