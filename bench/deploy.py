"""Deploy latency on the local target: from the deploy call to the first 200 through the gateway.

Cold: requirements never seen before (a unique `!=` pin on a small package, so the virtualenv key is
new) with uv's package cache warm. Cached: the same requirements, a new version. A client polls the
gateway from the moment it sends the deploy, as a user waiting on a new version would; phases come
from polling GET /deploy/{id} and timings from the build log. The anchor, measured in the same run,
is the floor of the same work done by hand: `uv venv` + `uv pip install` of the same requirements,
and the runtime's own start to its first answer.

Forced redeploy: the cached round's version deployed again (`--force`) while four clients call it
through the gateway, by `latest` and by its exact version, from before the deploy until after it is
done. Every call that is not a 200 with the right answer is a failed call; the target is none.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.common import BenchError, Profile, log, median, servers, workdir
from bench.jobs import ADDER, write_job_file
from bench.platform import PhaseWatch, deploy_and_wait, deploy_directory, platform, write_job
from bench.servers import start_trackside_job
from bench.setup import uv_binary

JOB = "bench-deploy"
PACKAGE = "six"  # small, pure Python, and in uv's cache after the warm-up deploy
TARGET_CACHED_S = 2.0
TARGET_COLD_S = 10.0
REDEPLOY_CLIENTS = 4
_TIMING_LINE = re.compile(r"\d+(?:\.\d+)?\s?s\b")


def run(profile: Profile) -> dict[str, Any]:
    rounds: dict[str, list[dict[str, Any]]] = {"cold": [], "cached": []}
    forced: list[dict[str, Any]] = []
    anchors: dict[str, list[float]] = {"uv_venv_install_s": [], "runtime_start_s": []}
    with workdir("deploy") as tmp, platform(tmp / "data") as running:
        # Warm-up (not measured): fills uv's cache with the package and runs the deploy path once.
        warm = write_job(tmp / "warm", "bench-warm", ADDER.lstrip(), entrypoint="adder.py", requirements=f"{PACKAGE}\n")
        deploy_and_wait(running, warm)
        for round_no in range(profile.deploy_rounds):
            requirements = f"{PACKAGE}!=0.0.{uuid.uuid4().int % 10**9}\n"
            for kind, patch in (("cold", 0), ("cached", 1)):
                version = f"1.{round_no}.{patch}"
                job_dir = write_job(
                    tmp / f"job-{version}",
                    JOB,
                    ADDER.lstrip(),
                    version=version,
                    entrypoint="adder.py",
                    requirements=requirements,
                )
                measured = _deploy_once(running, job_dir, version)
                rounds[kind].append(measured)
                log(
                    f"deploy {kind} round {round_no + 1}: first 200 after {measured['first_200_s']:.2f} s "
                    f"(deployment done at {measured['deployment_done_s']:.2f} s), phases {measured['phases_s']}"
                )
            forced.append(_forced_redeploy(running, job_dir, version))
            log(
                f"forced redeploy round {round_no + 1}: done after {forced[-1]['deployment_done_s']:.2f} s, "
                f"{forced[-1]['failed_calls']} failed of {forced[-1]['calls']} calls ({forced[-1]['failures_by_kind']})"
            )
            anchors["uv_venv_install_s"].append(_uv_anchor(tmp / f"anchor-venv-{round_no}", requirements))
            anchors["runtime_start_s"].append(_runtime_start_anchor(tmp / f"anchor-job-{round_no}"))
            log(
                f"deploy anchors round {round_no + 1}: uv venv + install {anchors['uv_venv_install_s'][-1]:.2f} s, "
                f"runtime start to first 200 {anchors['runtime_start_s'][-1]:.2f} s"
            )
    return _results(rounds, anchors, forced)


def _deploy_once(running: Any, job_dir: Path, version: str) -> dict[str, Any]:
    url = f"{running.url}/pub/job/{JOB}/{version}/api/v1/perform"
    statuses: list[tuple[float, int]] = []
    with httpx.Client(headers=running.auth, timeout=30) as client:
        started = time.monotonic()
        response = deploy_directory(running, job_dir)
        if response.status_code not in (200, 201):
            raise BenchError(f"POST /deploy answered {response.status_code}: {response.text}")
        watch = PhaseWatch(running, response.json()["id"], started)
        watch.start()
        first_200 = None
        refused_after_done = False
        deadline = started + 300
        while time.monotonic() < deadline:
            try:
                status = client.post(url, json={"a": 40, "b": 2}).status_code
            except httpx.HTTPError:
                status = 0
            now = time.monotonic() - started
            if not statuses or statuses[-1][1] != status:
                statuses.append((round(now, 3), status))
            if status == 404 and watch.status == "done":
                refused_after_done = True  # the deployment is done, yet the gateway still says 404
            if status == 200:
                first_200 = now
                break
            if watch.status == "failed":
                raise BenchError(f"deploying {JOB} {version} failed: {watch.error}")
            time.sleep(0.02)
        if first_200 is None:
            raise BenchError(f"{JOB} {version} never answered 200 through the gateway (statuses {statuses})")
        watch.join(60)
        if watch.status != "done":
            raise BenchError(f"deploying {JOB} {version} ended {watch.status}: {watch.error}")
        build_log = client.get(f"{running.api}/job/{JOB}/{version}/build-logs").json().get("logs", "")
    done_at = watch.finished_at or 0.0
    result: dict[str, Any] = {
        "version": version,
        "first_200_s": round(first_200, 3),
        "deployment_done_s": round(done_at, 3),
        "phases_s": watch.durations(),
        "gateway_statuses": statuses,
        "build_log_timings": [line.strip() for line in build_log.splitlines() if _TIMING_LINE.search(line)],
    }
    # The gateway caches refusals for its TTL: a 404 cached before the job existed can hold back the
    # first 200 after the deployment is done (seen as a 404 after GET /deploy/{id} said done).
    if refused_after_done:
        result["negative_cache_delay_s"] = round(first_200 - done_at, 3)
    return result


def _forced_redeploy(running: Any, job_dir: Path, version: str) -> dict[str, Any]:
    """The running `version` deployed again with `--force`, while REDEPLOY_CLIENTS clients call it."""
    urls = [f"{running.url}/pub/job/{JOB}/{v}/api/v1/perform" for v in ("latest", version)]
    lock = threading.Lock()
    stop = threading.Event()
    calls: list[int] = [0]
    failures: list[str] = []

    def call_loop() -> None:
        turn = 0
        with httpx.Client(headers=running.auth, timeout=30) as client:
            while not stop.is_set():
                url = urls[turn % 2]
                turn += 1
                try:
                    response = client.post(url, json={"a": 40, "b": 2})
                    failure = None if response.status_code == 200 and response.json() == 42 else response.text[:80]
                    failure = failure and f"{response.status_code} {failure}"
                except (httpx.HTTPError, ValueError) as exc:
                    failure = type(exc).__name__
                with lock:
                    calls[0] += 1
                    if failure:
                        failures.append(failure)

    def wait_for_calls(count: int) -> None:
        deadline = time.monotonic() + 60
        while calls[0] < count and time.monotonic() < deadline:
            time.sleep(0.02)

    threads = [threading.Thread(target=call_loop, daemon=True) for _ in range(REDEPLOY_CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        wait_for_calls(20)
        started = time.monotonic()
        response = deploy_directory(running, job_dir, force=True)
        if response.status_code not in (200, 201):
            raise BenchError(f"POST /deploy --force answered {response.status_code}: {response.text}")
        watch = PhaseWatch(running, response.json()["id"], started)
        watch.start()
        watch.join(300)
        wait_for_calls(calls[0] + 20)  # and a moment after it is done
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    if watch.status != "done":
        raise BenchError(f"forced redeploy of {JOB} {version} ended {watch.status}: {watch.error}")
    kinds = Counter(f.split(" ", 1)[0] for f in failures)
    return {
        "version": version,
        "deployment_done_s": round(watch.finished_at or 0.0, 3),
        "phases_s": watch.durations(),
        "calls": calls[0],
        "failed_calls": len(failures),
        "failures_by_kind": dict(kinds),
        "failures_sample": failures[:5],
    }


def _uv_anchor(target: Path, requirements: str) -> float:
    """`uv venv` + `uv pip install --compile-bytecode` of new, equivalent requirements, by hand."""
    uv = uv_binary()
    req_file = target.parent / f"{target.name}-requirements.txt"
    req_file.write_text(requirements.replace("!=0.0.", "!=0.1."))
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    started = time.monotonic()
    for command in (
        [uv, "venv", "-q", str(target)],
        [
            uv,
            "pip",
            "install",
            "-q",
            "--compile-bytecode",
            "--python",
            str(target / "bin" / "python"),
            "-r",
            str(req_file),
        ],
    ):
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise BenchError(f"anchor {' '.join(command[:3])} failed:\n{done.stderr[-2000:]}")
    return time.monotonic() - started


def _runtime_start_anchor(directory: Path) -> float:
    """Spawn of Trackside's runtime with the adder to its first 200, directly (no platform)."""
    job_file = write_job_file(directory, "adder")
    started = time.monotonic()
    with servers() as started_servers:
        started_servers.append(start_trackside_job(job_file, directory, name="anchor-runtime", core=None))
        return time.monotonic() - started


def _results(
    rounds: dict[str, list[dict[str, Any]]], anchors: dict[str, list[float]], forced: list[dict[str, Any]]
) -> dict[str, Any]:
    anchor = {k: round(median(v), 3) for k, v in anchors.items()}
    floor = {"cold": anchor["uv_venv_install_s"] + anchor["runtime_start_s"], "cached": anchor["runtime_start_s"]}
    targets = {"cold": TARGET_COLD_S, "cached": TARGET_CACHED_S}
    results: dict[str, Any] = {"anchors_s": anchor, "rounds": rounds, "targets": {}}
    for kind, measured in rounds.items():
        first = median([m["first_200_s"] for m in measured])
        done = median([m["deployment_done_s"] for m in measured])
        phases: dict[str, float] = {}
        for name in dict.fromkeys(p for m in measured for p in m["phases_s"]):
            # a phase shorter than the poll interval may go unseen in a round: median of the rounds that saw it
            phases[name] = round(median([m["phases_s"][name] for m in measured if name in m["phases_s"]]), 3)
        delays = [m["negative_cache_delay_s"] for m in measured if "negative_cache_delay_s" in m]
        results[kind] = {
            "first_200_s": round(first, 3),
            "deployment_done_s": round(done, 3),
            "phases_s": phases,
            "anchor_s": round(floor[kind], 3),
            "ratio_vs_anchor": round(first / floor[kind], 2),
            "negative_cache_delays_s": delays,
        }
        results["targets"][f"{kind}_first_200_s"] = {
            "value": round(first, 3),
            "target": f"<= {targets[kind]:g}",
            "met": first <= targets[kind],
        }
    failed = sum(m["failed_calls"] for m in forced)
    results["forced_redeploy"] = {
        "clients": REDEPLOY_CLIENTS,
        "deployment_done_s": round(median([m["deployment_done_s"] for m in forced]), 3),
        "calls": sum(m["calls"] for m in forced),
        "failed_calls": failed,
        "rounds": forced,
    }
    results["targets"]["forced_redeploy_failed_calls"] = {"value": failed, "target": "0", "met": failed == 0}
    return results
