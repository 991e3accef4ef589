"""The docker target inside a real `trackside up`: deploy through the API, call through the gateway.

Images go to the test registry (127.0.0.1:5000); the jobs are removed by the platform's delete and,
whatever happens, by the per-test target cleanup.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.infra.docker.support import REGISTRY, TEST_NAMESPACE, remove_jobs, require_engine, require_registry
from tests.support.platform import RunningPlatform, deploy_and_wait, start_platform, write_job

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# Calls itself through the gateway from inside its container, with its family's token (PUB_URL).
SELF_CALLER = """\
import json, os, urllib.request

class Job:
    def perform(self, a=0, b=0):
        return a + b

    def auxiliary_endpoints(self):
        return {"/via-gateway": self.via_gateway}

    def via_gateway(self):
        url = f"{os.environ['PUB_URL']}/job/{os.environ['JOB_NAME']}/{os.environ['JOB_VERSION']}/api/v1/perform"
        request = urllib.request.Request(url, data=json.dumps({"a": 1, "b": 2}).encode(), method="POST",
                                         headers={"X-Racetrack-Auth": os.environ["AUTH_TOKEN"],
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return {"status": response.status, "body": json.loads(response.read())}
"""

# The dockerfile job type: a program of its own (Python's http.server, not Trackside's runtime).
OWN_SERVER = """\
import http.server, json, os
BASE = f"/pub/job/{os.environ['JOB_NAME']}/{os.environ['JOB_VERSION']}"
class H(http.server.BaseHTTPRequestHandler):
    def answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        path = self.path.removeprefix(BASE)
        if path == "/live":
            self.answer({"live": True, "deployment_timestamp": int(os.environ["JOB_DEPLOYMENT_TIMESTAMP"])})
        else:
            self.answer({"ready": True, "path": path})
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.answer({"shout": body["text"].upper()})
http.server.ThreadingHTTPServer((os.environ["JOB_HOST"], int(os.environ["PORT"])), H).serve_forever()
"""


@pytest.fixture
def docker_platform(tmp_path: Path, database_url: str) -> Iterator[RunningPlatform]:
    engine = require_engine()
    require_registry()
    running = start_platform(
        tmp_path / "data",
        database_url,
        extra_env={
            "TRACKSIDE_DOCKER_REGISTRY": REGISTRY,
            "TRACKSIDE_DOCKER_REGISTRY_NAMESPACE": TEST_NAMESPACE,
        },
    )
    try:
        yield running
    finally:
        deployed = {job["name"] for job in running.http.get(f"{running.api}/job").json()}
        running.stop()
        remove_jobs(engine, *deployed)  # only this platform's jobs: parallel tests share the engine


def test_python3_job_on_docker_answers_through_the_gateway_and_calls_it_from_its_container(
    docker_platform: RunningPlatform, tmp_path: Path
) -> None:
    job_dir = write_job(tmp_path / "job", "dockadder", SELF_CALLER, extra="infrastructure_target: docker\n")
    cold = time.monotonic()
    result = deploy_and_wait(docker_platform, job_dir)
    cold = time.monotonic() - cold
    assert result["status"] == "done", result
    assert result["image_name"].startswith(f"{REGISTRY}/{TEST_NAMESPACE}/job-entrypoint/dockadder:")
    http = docker_platform.http
    pub = f"{docker_platform.url}/pub/job/dockadder/latest"
    assert http.post(f"{pub}/api/v1/perform", json={"a": 40, "b": 2}).json() == 42
    job = http.get(f"{docker_platform.api}/job/dockadder/0.0.1").json()
    assert job["infrastructure_target"] == "docker" and job["status"] == "running"
    # The gateway is reached from inside the container (host network) and checks the family's token.
    refused = http.post(f"{pub}/api/v1/via-gateway", json={})
    assert "403" in refused.text, refused.text
    granted = http.post(f"{docker_platform.api}/auth/allow/job_family/dockadder/job/dockadder/scope/call_job")
    assert granted.status_code == 201, granted.text
    time.sleep(2.5)  # the gateway's cached decision expires
    called = http.post(f"{pub}/api/v1/via-gateway", json={})
    assert called.status_code == 200, called.text
    assert called.json() == {"status": 200, "body": 3}
    assert "docker build finished" in http.get(f"{docker_platform.api}/job/dockadder/0.0.1/build-logs").json()["logs"]
    assert (
        "listening" in http.get(f"{docker_platform.api}/job/dockadder/0.0.1/logs", params={"tail": 50}).json()["logs"]
    )

    # A cached rebuild and redeploy of the unchanged job answers within seconds.
    started = time.monotonic()
    again = deploy_and_wait(docker_platform, job_dir, force=True)
    assert again["status"] == "done", again
    assert http.post(f"{pub}/api/v1/perform", json={"a": 1, "b": 1}).json() == 2
    cached = time.monotonic() - started
    print(f"docker deploy: cold {cold:.1f}s, cached {cached:.1f}s")
    assert cached < 30  # generous on a shared 2-core machine; the 5 s budget is measured by bench/

    assert http.delete(f"{docker_platform.api}/job/dockadder/0.0.1").status_code == 200
    assert http.post(f"{pub}/api/v1/perform", json={"a": 1, "b": 1}).status_code == 404


def write_shouter(job_dir: Path, name: str, extra: str = "") -> Path:
    """A `dockerfile` job whose image runs OWN_SERVER (it shouts back the text it is sent)."""
    job_dir.mkdir()
    (job_dir / "server.py").write_text(OWN_SERVER)
    (job_dir / "Dockerfile").write_text(
        'FROM trackside/python3-base:bookworm\nCOPY server.py /app/server.py\nCMD ["python3", "-u", "/app/server.py"]\n'
    )
    (job_dir / "job.yaml").write_text(
        f"name: {name}\nowner_email: t@example.com\nversion: 1.0.0\njobtype: dockerfile:latest\n{extra}"
    )
    return job_dir


def test_dockerfile_job_type_serves_its_own_program_through_the_gateway(
    docker_platform: RunningPlatform, tmp_path: Path
) -> None:
    job_dir = write_shouter(tmp_path / "shouter", "shouter", "infrastructure_target: docker\n")
    result = deploy_and_wait(docker_platform, job_dir)
    assert result["status"] == "done", result
    response = docker_platform.http.post(
        f"{docker_platform.url}/pub/job/shouter/latest/api/v1/shout", json={"text": "hello"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"shout": "HELLO"}


def test_a_job_type_that_builds_only_images_goes_to_docker_when_the_manifest_names_no_target(
    docker_platform: RunningPlatform, tmp_path: Path
) -> None:
    job_dir = write_shouter(tmp_path / "shouter", "untargeted")
    result = deploy_and_wait(docker_platform, job_dir)
    assert result["status"] == "done", result
    assert result["infrastructure_target"] == "docker"
    said = "job type dockerfile:1.0.0 builds only container images: deploying to the image target docker"
    assert said in result["warnings"]
    build_log = docker_platform.http.get(f"{docker_platform.api}/job/untargeted/1.0.0/build-logs").json()["logs"]
    assert said in build_log
    response = docker_platform.http.post(
        f"{docker_platform.url}/pub/job/untargeted/latest/api/v1/shout", json={"text": "hi"}
    )
    assert response.json() == {"shout": "HI"}
