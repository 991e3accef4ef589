"""The docker target: image build times (cold and cached) and a cached deploy's first 200 through the gateway.

Builds: examples/adder (python3 job type) and a dockerfile-type job (its own Dockerfile and a small
http.server program), each built by `trackside.build.images.build_job_image` on the local engine —
cold with `--no-cache` (only the base image is reused), then cached (same source, new tag). Deploy: a
new version of unchanged source through `trackside up` (so the image build is a cache hit), from the
`POST /deploy` to the first 200 of a client calling it through the gateway every 20 ms. Also measured:
a forced redeploy of the running version, with a client calling throughout (it must see no failure;
its duration includes the wait for gateways' route caches before the old containers go).
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import REPO_ROOT, BenchError, Profile, log, median, workdir
from bench.platform import PhaseWatch, deploy_directory, platform

NAMESPACE = "trackside-bench"
JOB = "bench-docker"
TARGET_FIRST_200_S = 5.0
BASE_IMAGE = "trackside/python3-base:bookworm"

DOCKERFILE = """\
FROM trackside/python3-base:bookworm
COPY server.py /srv/server.py
CMD ["python3", "/srv/server.py"]
"""
SERVER = """\
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
        if self.path.removeprefix(BASE) == "/live":
            self.answer({"live": True, "deployment_timestamp": int(os.environ["JOB_DEPLOYMENT_TIMESTAMP"])})
        else:
            self.answer({"ready": True})
    def do_POST(self):
        self.answer(42)
http.server.ThreadingHTTPServer((os.environ["JOB_HOST"], int(os.environ["PORT"])), H).serve_forever()
"""


def run(profile: Profile) -> dict[str, Any]:
    from trackside.infra.docker.engine import DockerEngine

    engine = DockerEngine()
    try:
        engine.ping()
    except Exception as exc:
        raise BenchError(f"no Docker engine: {exc} (run scripts/docker-setup)") from exc
    if not engine.image_exists(BASE_IMAGE):
        raise BenchError(f"{BASE_IMAGE} is not on the Docker engine (run scripts/docker-setup)")
    rounds = profile.deploy_rounds
    with workdir("docker-deploy") as tmp:
        try:
            builds = _builds(engine, tmp, rounds)
            deploys = _deploys(tmp, rounds)
        finally:
            _remove_images(engine)
    return _results(builds, deploys)


# --- image builds -----------------------------------------------------------------------------------


def _sources(tmp: Path) -> dict[str, tuple[Any, dict[str, str]]]:
    from trackside.manifest.load import parse_manifest

    adder_dir = REPO_ROOT / "examples" / "adder"
    adder = parse_manifest(
        {
            "name": "bench-docker-adder",
            "owner_email": "bench@example.com",
            "version": "0.0.1",
            "jobtype": "python3:latest",
            "jobtype_extra": {"entrypoint_path": "adder.py", "entrypoint_class": "Adder"},
        },
        source="bench manifest",
    )
    dockerfile = parse_manifest(
        {
            "name": "bench-docker-own",
            "owner_email": "bench@example.com",
            "version": "0.0.1",
            "jobtype": "dockerfile:latest",
        },
        source="bench manifest",
    )
    return {
        "adder": (adder, {"adder.py": (adder_dir / "adder.py").read_text()}),
        "dockerfile": (dockerfile, {"Dockerfile": DOCKERFILE, "server.py": SERVER}),
    }


def _build_once(engine: Any, tmp: Path, manifest: Any, files: dict[str, str], no_cache: bool) -> float:
    from trackside.build.images import build_job_image
    from trackside.build.jobtypes.dockerfile import Plugin as DockerfilePlugin
    from trackside.build.jobtypes.python3 import Plugin as Python3Plugin
    from trackside.build.spec import BuildSpec
    from trackside.config import Settings

    workspace = tmp / "builds" / uuid.uuid4().hex[:8]
    source = workspace / "src"
    source.mkdir(parents=True)
    for name, text in files.items():
        (source / name).write_text(text)
    plugin = Python3Plugin() if manifest.jobtype_name == "python3" else DockerfilePlugin()
    job_type = next(iter(plugin.job_types().values()))
    settings = Settings(data_dir=tmp / "build-data", docker_registry_namespace=NAMESPACE, docker_url="off")
    lines: list[str] = []
    started = time.monotonic()
    try:
        build_job_image(
            BuildSpec(
                manifest,
                job_type,
                workspace,
                tmp / "build-cache",
                lines.append,
                tag=f"b-{uuid.uuid4().hex[:10]}",
                no_cache=no_cache,
                source_ready=True,
            ),
            engine,
            settings,
        )
    except Exception as exc:
        raise BenchError(f"building {manifest.name} failed: {exc}\n" + "\n".join(lines[-20:])) from exc
    return time.monotonic() - started


def _builds(engine: Any, tmp: Path, rounds: int) -> dict[str, dict[str, list[float]]]:
    measured: dict[str, dict[str, list[float]]] = {}
    for name, (manifest, files) in _sources(tmp).items():
        measured[name] = {"cold": [], "cached": []}
        for round_no in range(rounds):
            cold = _build_once(engine, tmp, manifest, files, no_cache=True)
            cached = _build_once(engine, tmp, manifest, files, no_cache=False)
            measured[name]["cold"].append(round(cold, 3))
            measured[name]["cached"].append(round(cached, 3))
            log(f"docker build {name} round {round_no + 1}: cold (--no-cache) {cold:.2f} s, cached {cached:.2f} s")
    return measured


# --- deploys ----------------------------------------------------------------------------------------


def _write_job(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "examples" / "adder" / "adder.py", directory / "adder.py")
    (directory / "job.yaml").write_text(
        f"name: {JOB}\nowner_email: bench@example.com\nversion: {version}\njobtype: python3:latest\n"
        "infrastructure_target: docker\n"
        "jobtype_extra:\n  entrypoint_path: adder.py\n  entrypoint_class: Adder\n"
    )
    return directory


def _deploy_to_first_200(
    running: Any, job_dir: Path, version: str, force: bool = False, job: str = JOB
) -> dict[str, Any]:
    url = f"{running.url}/pub/job/{job}/{version}/api/v1/perform"
    statuses: list[tuple[float, int]] = []
    failures: list[str] = []
    with httpx.Client(headers=running.auth, timeout=30) as client:
        started = time.monotonic()
        response = deploy_directory(running, job_dir, force=force)
        if response.status_code not in (200, 201):
            raise BenchError(f"POST /deploy answered {response.status_code}: {response.text}")
        watch = PhaseWatch(running, response.json()["id"], started)
        watch.start()
        first_200: float | None = None
        calls = 0
        deadline = started + 300
        # A new version: until its first 200. A forced redeploy: until the deployment ends, every call.
        while time.monotonic() < deadline and not (force and watch.finished_at is not None):
            try:
                status = client.post(url, json={"a": 40, "b": 2}).status_code
            except httpx.HTTPError as exc:
                status = 0
                failures.append(repr(exc))
            calls += 1
            now = time.monotonic() - started
            if not statuses or statuses[-1][1] != status:
                statuses.append((round(now, 3), status))
            if status == 200 and first_200 is None:
                first_200 = now
                if not force:
                    break
            elif force and status != 200:
                failures.append(f"HTTP {status} at {now:.2f} s")
            if watch.status == "failed":
                raise BenchError(f"deploying {job} {version} failed: {watch.error}")
            time.sleep(0.02)
        if first_200 is None:
            raise BenchError(f"{job} {version} never answered 200 through the gateway (statuses {statuses})")
        watch.join(120)
        if watch.status != "done":
            raise BenchError(f"deploying {job} {version} ended {watch.status}: {watch.error}")
    return {
        "version": version,
        "first_200_s": round(first_200, 3),
        "deployment_done_s": round(watch.finished_at or 0.0, 3),
        "phases_s": watch.durations(),
        "gateway_statuses": statuses,
        "calls": calls,
        "failed_calls": failures,
    }


def _deploys(tmp: Path, rounds: int) -> dict[str, list[dict[str, Any]]]:
    measured: dict[str, list[dict[str, Any]]] = {"cached": [], "forced": []}
    env = {"TRACKSIDE_DOCKER_REGISTRY_NAMESPACE": NAMESPACE, "TRACKSIDE_DOCKER_REGISTRY": ""}
    with platform(tmp / "data", env=env) as running:
        try:
            # Warm-up (not measured): the first build of this source fills the build cache.
            _deploy_to_first_200(running, _write_job(tmp / "job-warm", "0.0.1"), "0.0.1")
            for round_no in range(rounds):
                version = f"1.{round_no}.0"
                job_dir = _write_job(tmp / f"job-{version}", version)
                cached = _deploy_to_first_200(running, job_dir, version)
                measured["cached"].append(cached)
                forced = _deploy_to_first_200(running, job_dir, version, force=True)
                measured["forced"].append(forced)
                log(
                    f"docker deploy round {round_no + 1}: cached first 200 after {cached['first_200_s']:.2f} s "
                    f"(done {cached['deployment_done_s']:.2f} s); forced redeploy done in "
                    f"{forced['deployment_done_s']:.2f} s, {len(forced['failed_calls'])} failed of "
                    f"{forced['calls']} calls"
                )
        finally:
            for job in running.http.get(f"{running.api}/job").json():
                running.http.delete(f"{running.api}/job/{job['name']}/{job['version']}")
    return measured


def _remove_images(engine: Any) -> None:
    listed = engine.run(["images", "--format", "{{.Repository}}:{{.Tag}}"], check=False).stdout.split()
    mine = [image for image in listed if image.startswith(f"{NAMESPACE}/")]
    ids = engine.run(["ps", "-aq", "--filter", f"label=trackside.job-name={JOB}"], check=False).stdout.split()
    if ids:
        engine.run(["rm", "-f", *ids], check=False)
    if mine:
        engine.run(["rmi", "-f", *mine], check=False, timeout=300)


# --- results ----------------------------------------------------------------------------------------


def _results(builds: dict[str, dict[str, list[float]]], deploys: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    results: dict[str, Any] = {"builds_s": {}, "rounds": {"builds": builds, "deploys": deploys}, "targets": {}}
    for name, kinds in builds.items():
        results["builds_s"][name] = {kind: round(median(values), 3) for kind, values in kinds.items()}
    cached, forced = deploys["cached"], deploys["forced"]
    first = round(median([m["first_200_s"] for m in cached]), 3)
    phases: dict[str, float] = {}
    for name in dict.fromkeys(p for m in cached for p in m["phases_s"]):
        phases[name] = round(median([m["phases_s"][name] for m in cached if name in m["phases_s"]]), 3)
    results["cached_deploy"] = {
        "first_200_s": first,
        "deployment_done_s": round(median([m["deployment_done_s"] for m in cached]), 3),
        "phases_s": phases,
    }
    results["forced_redeploy"] = {
        "deployment_done_s": round(median([m["deployment_done_s"] for m in forced]), 3),
        "calls": sum(m["calls"] for m in forced),
        "failed_calls": sum(len(m["failed_calls"]) for m in forced),
    }
    results["targets"]["cached_deploy_first_200_s"] = {
        "value": first,
        "target": f"<= {TARGET_FIRST_200_S:g}",
        "met": first <= TARGET_FIRST_200_S,
    }
    results["targets"]["forced_redeploy_failed_calls"] = {
        "value": results["forced_redeploy"]["failed_calls"],
        "target": "0",
        "met": results["forced_redeploy"]["failed_calls"] == 0,
    }
    return results
