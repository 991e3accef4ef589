"""The docker target on a real engine: deploy, list, adopt, logs, delete, and each way a deploy fails."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from tests.infra.docker.support import (
    ADDER,
    ENV_JOB,
    build,
    call,
    docker_settings,
    dockerfile_manifest,
    python_manifest,
    remove_images,
    unique,
)

from trackside.domain import JobFamilyDto, JobSecrets, JobStatus
from trackside.errors import DeployFailed, NotFound, Unavailable
from trackside.infra.docker import DockerTarget, Plugin, build_docker_target
from trackside.infra.docker.engine import DockerEngine, EngineConfig

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# A job program of its own (the dockerfile job type): /live answers, /ready never does.
NEVER_READY = """\
import http.server, json, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/live"
        body = json.dumps({"live": True, "deployment_timestamp": int(os.environ.get("JOB_DEPLOYMENT_TIMESTAMP", 0))})
        self.send_response(200 if ok else 503)
        self.end_headers()
        self.wfile.write(body.encode() if ok else b"warming up forever")
http.server.HTTPServer((os.environ["JOB_HOST"], int(os.environ["PORT"])), H).serve_forever()
"""


def deploy(target: DockerTarget, settings: object, manifest: object, tag: str, secrets: dict[str, str] | None = None):
    assert target.job_deployer is not None
    timestamp = int(time.time())
    env = {
        "JOB_NAME": manifest.name,
        "JOB_VERSION": manifest.version,  # type: ignore[attr-defined]
        "JOB_DEPLOYMENT_TIMESTAMP": str(timestamp),
        "PUB_URL": "http://127.0.0.1:1/pub",
    }
    job = target.job_deployer.deploy_job(
        manifest,
        settings,
        None,
        tag,
        env,
        JobFamilyDto(manifest.name),  # type: ignore[arg-type, attr-defined]
        runtime_secret_vars=secrets or {},
    )
    return job, timestamp


def test_replicas_run_as_labelled_containers_serve_and_are_adopted_by_a_new_target(
    engine: DockerEngine, target_name: str, tmp_path: Path
) -> None:
    # The target comes from `docker_targets` with an explicit DOCKER_HOST-style URL: the remote code path.
    settings = docker_settings(tmp_path, docker_targets={target_name: {"url": "unix:///var/run/docker.sock"}})
    plugin = Plugin()
    plugin.settings = settings
    target = plugin.infrastructure_targets()[target_name]
    assert isinstance(target, DockerTarget) and target.artifact_kind == "image"
    name = unique("envjob")
    manifest = python_manifest(name, replicas=2)
    tag = unique("t")
    image = build(engine, settings, tmp_path / "ws", manifest, {"job.py": ENV_JOB}, tag=tag)
    try:
        assert target.job_deployer is not None and target.job_monitor is not None
        target.job_deployer.save_job_secrets(name, "0.0.1", JobSecrets(secret_runtime_env={"SECRET_VALUE": "s3"}))
        job, timestamp = deploy(target, settings, manifest, tag, secrets={"SECRET_VALUE": "s3"})
        assert len(job.replica_internal_names) == 2
        target.job_monitor.check_job_condition(job, deployment_timestamp=timestamp)
        for address in job.replica_internal_names:
            assert call(address, {}).json() == "s3"
            assert call(address, {"name": "JOB_NAME"}).json() == name

        listed = [j for j in target.job_monitor.list_jobs(settings) if j.name == name]
        assert [(j.version, j.status, len(j.replica_internal_names)) for j in listed] == [
            ("0.0.1", JobStatus.RUNNING.value, 2)
        ]
        # A new target object (Trackside restarted) finds the same containers by their labels.
        fresh = build_docker_target(settings, target_name, EngineConfig(url="unix:///var/run/docker.sock"))
        assert fresh.job_monitor is not None and fresh.job_deployer is not None
        adopted = fresh.job_monitor.list_jobs(settings)
        assert sorted(adopted[0].replica_internal_names) == sorted(job.replica_internal_names)
        assert adopted[0].image_tag == tag
        assert fresh.job_deployer.get_job_secrets(name, "0.0.1").secret_runtime_env == {"SECRET_VALUE": "s3"}

        assert "trackside job runtime listening" in fresh.job_monitor.read_recent_logs(job, tail=50)
        lines: list[str] = []
        got = threading.Event()
        assert fresh.logs_streamer is not None

        def on_line(_session: str, line: str) -> None:
            lines.append(line)
            if "perform" in line:
                got.set()

        fresh.logs_streamer.create_session("s1", {"job_name": name, "job_version": "0.0.1", "tail": "0"}, on_line)
        try:
            time.sleep(0.3)
            call(job.replica_internal_names[0], {})
            assert got.wait(10), lines
        finally:
            fresh.logs_streamer.close_session("s1")

        fresh.job_deployer.delete_job(name, "0.0.1")
        assert not target.job_deployer.job_exists(name, "0.0.1")
        assert target.job_monitor.list_jobs(settings) == []
        with pytest.raises(NotFound):
            target.job_deployer.get_job_secrets(name, "0.0.1")
    finally:
        remove_images(engine, image)


def test_a_named_bridge_network_publishes_the_job_port_on_loopback(
    engine: DockerEngine, target_name: str, tmp_path: Path
) -> None:
    network = unique("tsnet")
    settings = docker_settings(tmp_path, docker_network=network)
    target = build_docker_target(settings, target_name, EngineConfig())
    manifest = python_manifest(unique("bridged"))
    tag = unique("t")
    image = build(engine, settings, tmp_path / "ws", manifest, {"job.py": ADDER}, tag=tag)
    try:
        job, timestamp = deploy(target, settings, manifest, tag)
        assert target.job_monitor is not None
        target.job_monitor.check_job_condition(job, deployment_timestamp=timestamp)
        assert job.internal_name is not None and job.internal_name.startswith("127.0.0.1:")
        assert call(job.internal_name, {"a": 40, "b": 2}).json() == 42
    finally:
        from tests.infra.docker.support import remove_target

        remove_target(engine, target_name)
        engine.run(["network", "rm", network], check=False)
        remove_images(engine, image)


def test_a_container_that_exits_at_once_fails_the_deploy_with_its_last_lines(
    engine: DockerEngine, target_name: str, tmp_path: Path
) -> None:
    settings = docker_settings(tmp_path)
    target = build_docker_target(settings, target_name, EngineConfig())
    manifest = dockerfile_manifest(unique("crasher"))
    tag = unique("t")
    dockerfile = (
        "FROM trackside/python3-base:bookworm\n"
        'CMD ["python3", "-c", "import sys; print(\'fatal: DATABASE_URL is not set\'); sys.exit(3)"]\n'
    )
    image = build(engine, settings, tmp_path / "ws", manifest, {"Dockerfile": dockerfile}, tag=tag)
    try:
        job, timestamp = deploy(target, settings, manifest, tag)
        assert target.job_monitor is not None
        with pytest.raises(DeployFailed) as failure:
            target.job_monitor.check_job_condition(job, deployment_timestamp=timestamp)
        assert "fatal: DATABASE_URL is not set" in failure.value.message
        assert "exit" in failure.value.message
    finally:
        remove_images(engine, image)


def test_a_job_that_never_becomes_ready_times_out_naming_its_answer(
    engine: DockerEngine, target_name: str, tmp_path: Path
) -> None:
    settings = docker_settings(tmp_path, job_ready_timeout=1.5)
    target = build_docker_target(settings, target_name, EngineConfig())
    manifest = dockerfile_manifest(unique("sleepy"), jobtype_extra={"dockerfile_path": "build/Job.Dockerfile"})
    tag = unique("t")
    files = {
        "server.py": NEVER_READY,
        "build/Job.Dockerfile": "FROM trackside/python3-base:bookworm\nCOPY server.py /server.py\n"
        'CMD ["python3", "-u", "/server.py"]\n',
    }
    image = build(engine, settings, tmp_path / "ws", manifest, files, tag=tag)
    try:
        job, timestamp = deploy(target, settings, manifest, tag)
        alive: list[bool] = []
        assert target.job_monitor is not None
        with pytest.raises(DeployFailed) as failure:
            target.job_monitor.check_job_condition(
                job, deployment_timestamp=timestamp, on_job_alive=lambda: alive.append(True)
            )
        assert alive == [True]
        assert "did not become ready within 1.5s" in failure.value.message
        assert "warming up forever" in failure.value.message
    finally:
        remove_images(engine, image)


def test_resources_the_engine_cannot_satisfy_are_refused_naming_the_field(
    engine: DockerEngine, target_name: str, tmp_path: Path
) -> None:
    settings = docker_settings(tmp_path)
    target = build_docker_target(settings, target_name, EngineConfig())
    name = unique("greedy")
    tag = unique("t")
    image = build(engine, settings, tmp_path / "ws", python_manifest(name), {"job.py": ADDER}, tag=tag)
    try:
        cpus = int(engine.info().get("NCPU") or 1)
        with pytest.raises(DeployFailed) as too_many:
            deploy(target, settings, python_manifest(name, resources={"cpu_max": str(cpus * 8)}), tag)
        assert "resources.cpu_max" in too_many.value.message
        assert f"{cpus} CPUs" in too_many.value.message
        with pytest.raises(DeployFailed) as too_small:
            deploy(target, settings, python_manifest(name, resources={"memory_max": "4Mi"}), tag)
        assert "Minimum memory limit" in too_small.value.message
        assert "resources.memory_max" in too_small.value.message
        assert target.job_deployer is not None and not target.job_deployer.job_exists(name, "0.0.1")
        # Limits that fit are applied to the container.
        job, _ = deploy(
            target, settings, python_manifest(name, resources={"memory_max": "256Mi", "cpu_max": "500m"}), tag
        )
        container = job.infrastructure_stats["containers"][0]
        limits = engine.run(["inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}", container])
        assert limits.stdout.split() == [str(256 * 2**20), str(500_000_000)]
    finally:
        remove_images(engine, image)


def test_an_unreachable_daemon_is_an_error_naming_it(tmp_path: Path) -> None:
    settings = docker_settings(tmp_path)
    target = build_docker_target(settings, "nowhere", EngineConfig(url="tcp://127.0.0.1:1"))
    assert target.job_monitor is not None
    with pytest.raises(Unavailable) as failure:
        target.job_monitor.list_jobs(settings)
    assert "tcp://127.0.0.1:1" in failure.value.message
    assert "not reachable" in failure.value.message
