"""The whole path on the embedded default: deploy a Python job, call it through the gateway."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from tests.conftest import EXAMPLES
from tests.support.platform import (
    RunningPlatform,
    deploy_and_wait,
    deploy_directory,
    start_platform,
    wait_for_deployment,
    write_job,
)

pytestmark = pytest.mark.slow

ADDER = EXAMPLES / "adder"


def perform(platform: RunningPlatform, version: str = "latest", payload: dict | None = None) -> httpx.Response:
    return platform.http.post(
        f"{platform.url}/pub/job/adder/{version}/api/v1/perform", json=payload or {"a": 40, "b": 2}, timeout=10
    )


def test_deployed_adder_answers_42_through_the_gateway_by_every_version_form(platform: RunningPlatform) -> None:
    result = deploy_and_wait(platform, ADDER)
    assert result["status"] == "done", result
    assert result["job"]["pub_url"].endswith("/pub/job/adder/0.0.1")
    for version in ("latest", "0.0.1", "0.x", "0.0.x"):
        response = perform(platform, version)
        assert response.status_code == 200, response.text
        assert response.json() == 42
        assert response.headers["X-Request-Tracing-Id"]


def test_job_operations_list_get_logs_build_logs_and_delete(platform: RunningPlatform) -> None:
    assert deploy_and_wait(platform, ADDER)["status"] == "done"
    jobs = platform.http.get(f"{platform.api}/job").json()
    assert [(j["name"], j["version"], j["status"]) for j in jobs] == [("adder", "0.0.1", "running")]
    assert platform.http.get(f"{platform.api}/job/adder/latest").json()["version"] == "0.0.1"
    perform(platform)
    build_logs = platform.http.get(f"{platform.api}/job/adder/0.0.1/build-logs").json()["logs"]
    assert "virtualenv" in build_logs
    runtime_logs = platform.http.get(f"{platform.api}/job/adder/latest/logs", params={"tail": 100}).json()["logs"]
    assert runtime_logs.strip()

    deleted = platform.http.delete(f"{platform.api}/job/adder/0.0.1")
    assert deleted.status_code == 200, deleted.text
    assert platform.http.get(f"{platform.api}/job").json() == []
    gone = perform(platform)
    assert gone.status_code == 404
    assert "adder" in gone.json()["error"]
    # A deleted version can't be claimed again without --force.
    again = deploy_directory(platform, ADDER)
    assert again.status_code == 409
    assert "deleted" in again.json()["error"]


def test_versions_are_immutable_unless_forced(platform: RunningPlatform) -> None:
    assert deploy_and_wait(platform, ADDER)["status"] == "done"
    refused = deploy_directory(platform, ADDER)
    assert refused.status_code == 409
    assert "immutable" in refused.json()["error"]
    forced = deploy_and_wait(platform, ADDER, force=True)
    assert forced["status"] == "done", forced
    assert perform(platform).json() == 42


def test_latest_points_at_the_highest_stable_version(platform: RunningPlatform, tmp_path: Path) -> None:
    source = "class Job:\n    def perform(self):\n        import os\n        return os.environ['JOB_VERSION']\n"
    for version in ("1.0.0", "1.2.0", "2.0.0-beta"):
        job_dir = write_job(tmp_path / version, "versioned", source, version=version)
        assert deploy_and_wait(platform, job_dir)["status"] == "done"

    def call(v: str) -> object:
        return platform.http.post(f"{platform.url}/pub/job/versioned/{v}/api/v1/perform", json={}).json()

    assert call("latest") == "1.2.0"
    assert call("1.x") == "1.2.0"
    assert call("2.0.0-beta") == "2.0.0-beta"
    missing = platform.http.post(f"{platform.url}/pub/job/versioned/3.x/api/v1/perform", json={})
    assert missing.status_code == 404


def test_user_code_errors_are_500_and_wrong_arguments_400_through_the_gateway(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    assert deploy_and_wait(platform, ADDER)["status"] == "done"
    wrong = perform(platform, payload={"x": 1})
    assert wrong.status_code == 400
    assert wrong.json()["error"]
    not_json = platform.http.post(f"{platform.url}/pub/job/adder/latest/api/v1/perform", content=b"{nope")
    assert not_json.status_code == 400
    # An argument that does not match perform's annotation is refused before user code runs.
    mistyped = perform(platform, payload={"a": "x", "b": 1})
    assert mistyped.status_code == 400
    assert "a" in mistyped.json()["error"] and "float" in mistyped.json()["error"]
    # A TypeError raised by the user's own code is the job's fault: 500, named.
    source = "class Job:\n    def perform(self, text: str):\n        return text + 1\n"
    assert deploy_and_wait(platform, write_job(tmp_path / "broken", "broken", source))["status"] == "done"
    type_error = platform.http.post(f"{platform.url}/pub/job/broken/latest/api/v1/perform", json={"text": "x"})
    assert type_error.status_code == 500
    assert type_error.json()["type"] == "TypeError"


def test_runtime_env_and_secrets_reach_the_job(platform: RunningPlatform, tmp_path: Path) -> None:
    source = (
        "import os\nclass Job:\n    def perform(self):\n"
        "        return {k: os.environ.get(k) for k in ('JOB_NAME', 'JOB_VERSION', 'PUB_URL', 'GREETING',"
        " 'TOKEN', 'BUILD_ONLY')}\n"
    )
    job_dir = write_job(
        tmp_path / "env", "envjob", source, extra="runtime_env:\n  GREETING: hello\nbuild_env:\n  BUILD_ONLY: b\n"
    )
    result = deploy_and_wait(platform, job_dir, secret_vars={"runtime_env": {"TOKEN": "s3cret"}, "build_env": {}})
    assert result["status"] == "done", result
    env = platform.http.post(f"{platform.url}/pub/job/envjob/latest/api/v1/perform", json={}).json()
    assert env["JOB_NAME"] == "envjob" and env["JOB_VERSION"] == "0.0.1"
    assert env["PUB_URL"].endswith("/pub")
    assert env["GREETING"] == "hello" and env["TOKEN"] == "s3cret"
    assert env["BUILD_ONLY"] == ""
    deployment = platform.http.get(f"{platform.api}/deploy/{result['id']}").text
    assert "s3cret" not in deployment


@pytest.mark.parametrize(
    ("case", "source", "requirements", "expected"),
    [
        ("missing-entrypoint", None, None, "entrypoint"),
        (
            "import-error",
            "import not_a_module_anywhere\nclass Job:\n    def perform(self):\n        return 1\n",
            None,
            "not_a_module_anywhere",
        ),
        (
            "bad-requirements",
            "class Job:\n    def perform(self):\n        return 1\n",
            "this-package-does-not-exist-trackside==1.0\n",
            "this-package-does-not-exist-trackside",
        ),
    ],
)
def test_failed_deploys_say_why_and_leave_nothing_behind(
    platform: RunningPlatform,
    tmp_path: Path,
    case: str,
    source: str | None,
    requirements: str | None,
    expected: str,
) -> None:
    job_dir = write_job(tmp_path / case, case, source or "", requirements=requirements)
    if source is None:
        (job_dir / "job.py").unlink()
    result = deploy_and_wait(platform, job_dir)
    assert result["status"] == "failed"
    assert expected in result["error"]
    assert platform.http.get(f"{platform.api}/job").json() == []
    assert platform.http.get(f"{platform.url}/pub/job/{case}/latest/api/v1/perform").status_code == 404
    assert not list((platform.data_dir / "builds").glob(f"{case}/*/*"))
    if case == "bad-requirements":
        logs = platform.http.get(f"{platform.api}/job/{case}/0.0.1/build-logs").json()["logs"]
        assert expected in logs


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"manifest": {"name": "x"}}, "owner_email"),
        (
            {
                "manifest": {
                    "name": "x",
                    "owner_email": "a@b.c",
                    "jobtype": "cobol:1.0",
                    "git": {"remote": "https://example.com/r"},
                }
            },
            "cobol",
        ),
        (
            {
                "manifest": {
                    "name": "x",
                    "owner_email": "a@b.c",
                    "jobtype": "python3:latest",
                    "jobtype_extra": {"entrypoint_path": "j.py"},
                    "colour": "red",
                }
            },
            "colour",
        ),
        ({"manifest": "not an object"}, "manifest"),
    ],
)
def test_invalid_deploy_requests_are_400_naming_the_problem(
    platform: RunningPlatform, body: dict, expected: str
) -> None:
    response = platform.http.post(f"{platform.api}/deploy", json=body)
    assert response.status_code == 400, response.text
    assert expected in response.json()["error"]
    assert response.json()["type"]
    assert platform.http.get(f"{platform.api}/deploy").json() == []


def test_a_build_context_that_is_not_a_tar_gz_fails_cleanly(platform: RunningPlatform) -> None:
    from trackside.manifest.load import load_manifest_dict

    body = {"manifest": load_manifest_dict(ADDER), "build_context": "bm90IGEgdGFyYmFsbA=="}
    response = platform.http.post(f"{platform.api}/deploy", json=body)
    if response.status_code == 400:
        assert "tar.gz" in response.json()["error"]
        return
    from tests.support.platform import wait_for_deployment

    result = wait_for_deployment(platform.api, response.json()["id"])
    assert result["status"] == "failed" and "tar.gz" in result["error"]
    assert platform.http.get(f"{platform.api}/job").json() == []


def test_gateway_answers_json_errors_for_unknown_jobs_and_reports_health(platform: RunningPlatform) -> None:
    missing = platform.http.get(f"{platform.url}/pub/job/nope/latest/api/v1/perform")
    assert missing.status_code == 404
    assert missing.json()["error"]
    health = platform.http.get(f"{platform.url}/pub/health").json()
    assert health["status"] == "pass"


def test_jobs_serve_again_after_the_platform_restarts(tmp_path: Path, database_url: str) -> None:
    first = start_platform(tmp_path / "data", database_url)
    try:
        assert deploy_and_wait(first, ADDER)["status"] == "done"
    finally:
        first.stop()
    port = int(first.url.rsplit(":", 1)[1])
    second = start_platform(tmp_path / "data", database_url, port=port)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            response = perform(second)
            if response.status_code == 200:
                break
            time.sleep(0.2)
        assert response.status_code == 200, response.text
        assert response.json() == 42
    finally:
        second.stop()


def test_a_crashed_replica_is_restarted_and_its_status_shown(platform: RunningPlatform) -> None:
    assert deploy_and_wait(platform, ADDER)["status"] == "done"
    job = platform.http.get(f"{platform.api}/job/adder/0.0.1").json()
    pids = job["infrastructure_stats"].get("pids") or []
    if not pids:
        deadline = time.monotonic() + 5
        while not pids and time.monotonic() < deadline:
            time.sleep(0.3)
            pids = platform.http.get(f"{platform.api}/job/adder/0.0.1").json()["infrastructure_stats"].get("pids") or []
    assert pids, job
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 20
    recovered = False
    while time.monotonic() < deadline:
        response = perform(platform)
        if response.status_code == 200:
            recovered = True
            break
        time.sleep(0.2)
    assert recovered
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        job = platform.http.get(f"{platform.api}/job/adder/0.0.1").json()
        if job["status"] == "running" and job["infrastructure_stats"].get("restarts", 0) >= 1:
            break
        time.sleep(0.2)
    assert job["status"] == "running"
    assert job["infrastructure_stats"].get("restarts", 0) >= 1


def test_redeploy_rebuilds_from_the_stored_source_and_keeps_serving(platform: RunningPlatform) -> None:
    assert deploy_and_wait(platform, ADDER)["status"] == "done"
    before = platform.http.get(f"{platform.api}/job/adder/0.0.1").json()
    response = platform.http.post(f"{platform.api}/job/adder/0.0.1/redeploy")
    assert response.status_code == 202, response.text
    result = wait_for_deployment(platform.api, response.json()["id"])
    assert result["status"] == "done", result
    after = platform.http.get(f"{platform.api}/job/adder/0.0.1").json()
    assert after["image_tag"] != before["image_tag"]
    assert perform(platform).json() == 42


def _git(*args: str, cwd: Path) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_a_deployment_records_its_exact_source_and_a_redeploy_rebuilds_it(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    repo = write_job(tmp_path / "repo", "pinned", "class Job:\n    def perform(self) -> int:\n        return 1\n")
    _git("init", "-q", ".", cwd=repo)
    _git("add", ".", cwd=repo)
    _git("commit", "-q", "-m", "one", cwd=repo)
    first = _git("rev-parse", "HEAD", cwd=repo)
    manifest = {**yaml.safe_load((repo / "job.yaml").read_text()), "git": {"remote": str(repo), "branch": "main"}}

    def deploy(force: bool) -> dict:
        response = platform.http.post(f"{platform.api}/deploy", json={"manifest": manifest, "force": force})
        assert response.status_code == 201, response.text
        return wait_for_deployment(platform.api, response.json()["id"])

    def answer() -> object:
        return platform.http.post(f"{platform.url}/pub/job/pinned/0.0.1/api/v1/perform", json={}).json()

    deployed = deploy(force=False)
    assert deployed["status"] == "done", deployed
    assert deployed["source_version"] == first
    assert platform.http.get(f"{platform.api}/job/pinned/0.0.1").json()["source_version"] == first
    build_log = platform.http.get(f"{platform.api}/job/pinned/0.0.1/build-logs/plain").text
    assert f"source: git commit {first}" in build_log

    # The branch moves on, and the kept source is gone (a redeploy run by a lifecycle on another host).
    (repo / "job.py").write_text("class Job:\n    def perform(self) -> int:\n        return 2\n")
    _git("commit", "-q", "-am", "two", cwd=repo)
    shutil.rmtree(platform.data_dir / "builds" / "pinned")

    response = platform.http.post(f"{platform.api}/job/pinned/0.0.1/redeploy")
    assert response.status_code == 202, response.text
    redeployed = wait_for_deployment(platform.api, response.json()["id"])
    assert redeployed["status"] == "done", redeployed
    assert redeployed["source_version"] == first
    assert answer() == 1, "a redeploy rebuilds what was deployed, not the branch's head"
    build_log = platform.http.get(f"{platform.api}/job/pinned/0.0.1/build-logs/plain").text
    assert f"checking out commit {first}" in build_log

    forced = deploy(force=True)  # a new deploy takes the branch's head
    assert forced["status"] == "done", forced
    assert forced["source_version"] == _git("rev-parse", "HEAD", cwd=repo) != first
    assert answer() == 2


def test_an_uploaded_source_is_recorded_by_its_content_digest(platform: RunningPlatform) -> None:
    first = deploy_and_wait(platform, ADDER)
    assert first["status"] == "done", first
    digest = first["source_version"]
    assert digest.startswith("sha256:")
    assert platform.http.get(f"{platform.api}/job/adder/0.0.1").json()["source_version"] == digest
    again = deploy_and_wait(platform, ADDER, force=True)  # packed again: another archive, the same files
    assert again["source_version"] == digest
    response = platform.http.post(f"{platform.api}/job/adder/0.0.1/redeploy")
    redeployed = wait_for_deployment(platform.api, response.json()["id"])
    assert redeployed["status"] == "done" and redeployed["source_version"] == digest
    assert f"source: uploaded build context {digest}" in redeployed_log(platform)
    # Once the kept upload is gone, its git remote's head is not that source: refused, not rebuilt.
    shutil.rmtree(platform.data_dir / "builds" / "adder")
    refused = platform.http.post(f"{platform.api}/job/adder/0.0.1/redeploy")
    assert refused.status_code == 400, refused.text
    assert f"built from an uploaded build context ({digest}) that is no longer kept" in refused.json()["error"]


def redeployed_log(platform: RunningPlatform) -> str:
    return platform.http.get(f"{platform.api}/job/adder/0.0.1/build-logs/plain").text


def test_image_only_job_types_and_builds_with_no_image_target_are_refused_saying_why(
    tmp_path: Path, database_url: str
) -> None:
    platform = start_platform(tmp_path / "data", database_url, extra_env={"TRACKSIDE_DOCKER_URL": "off"})
    try:
        job_dir = tmp_path / "own"
        job_dir.mkdir()
        (job_dir / "Dockerfile").write_text("FROM scratch\n")
        (job_dir / "job.yaml").write_text(
            "name: own\nowner_email: t@example.com\nversion: 1.0.0\njobtype: dockerfile:latest\n"
        )
        response = deploy_directory(platform, job_dir)
        assert response.status_code == 400, response.text
        assert "builds only container images, and no infrastructure target here runs them" in response.json()["error"]
        # `racetrack run-local` builds an image: nowhere to build one is a 400 too.
        manifest = yaml.safe_load((ADDER / "job.yaml").read_text())
        build = platform.http.post(f"{platform.api}/build", json={"manifest": manifest})
        assert build.status_code == 400, build.text
        assert "needs an infrastructure target that runs container images" in build.json()["error"]
        assert platform.http.get(f"{platform.api}/job").json() == []
        assert platform.http.get(f"{platform.api}/deploy").json() == []
    finally:
        platform.stop()
