"""Pipelines: what the scheduler adds per step, and a burst of runs submitted at once.

- `call` chain: a 20-step chain of `call` steps to the adder (each step's payload takes the previous
  step's output), against the anchor of calling the adder 20 times in a row through the gateway from a
  client. Added time per step = (run wall time - the 20 direct calls' time) / 20, per round; p50/p99
  over the rounds. The run's wall time is from `POST /api/runs` to the end of its event stream.
- `local` chain: 20 steps of `true` on the local executor, against `sh -c true` run 20 times by the
  client (subprocess); `docker` chain: 20 steps of `true` on the docker executor, against
  `docker run --rm IMAGE sh -c true` 20 times. Same per-step formula.
- burst: N runs of 10-step local chains posted at once (16 client threads): every run must end
  SUCCESSFUL (none lost); the time to drain them, steps per second, and the platform's RSS before and
  its peak (VmHWM) after.
"""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.common import CLK_TCK, REPO_ROOT, BenchError, Profile, log, median, process_tree, status_kib, workdir
from bench.platform import RunningPlatform, deploy_and_wait, platform

STEPS = 20
TARGET_CALL_ADDED_MS = 5.0
IMAGE = "trackside/python3-base:bookworm"
ENV = {
    "TRACKSIDE_PIPELINE_LOCAL_EXECUTOR": "true",
    "TRACKSIDE_PIPELINE_EXECUTOR": "local",
    "TRACKSIDE_PIPELINE_LOG_NOTIFIER": "false",
    "TRACKSIDE_PIPELINE_IMAGES": json.dumps({"busybox": IMAGE}),
}


def call_chain() -> dict[str, Any]:
    jobs: dict[str, Any] = {"s0": {"call": {"job": "adder", "payload": {"a": 0, "b": 1}}}}
    for i in range(1, STEPS):
        jobs[f"s{i}"] = {
            "call": {"job": "adder", "payload": {"a": f"${{{{ jobs.s{i - 1}.outputs.result }}}}", "b": 1}},
            "dependsOn": [{"job": f"s{i - 1}"}],
        }
    return {"kind": "Pipeline", "jobs": jobs}


def command_chain(executor: str, command: str = "true") -> dict[str, Any]:
    jobs: dict[str, Any] = {}
    for i in range(STEPS):
        jobs[f"s{i}"] = {"image": "busybox", "run": command, "executor": executor}
        if i:
            jobs[f"s{i}"]["dependsOn"] = [{"job": f"s{i - 1}"}]
    return {"kind": "Pipeline", "jobs": jobs}


def run_and_time(client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Seconds from POST to the end of the run's event stream, and the final run."""
    started = time.perf_counter()
    response = client.post(f"{url}/api/runs", json=body)
    if response.status_code != 202:
        raise BenchError(f"POST /api/runs answered {response.status_code}: {response.text}")
    uid = response.json()["metadata"]["uid"]
    with client.stream("GET", f"{url}/api/runs/{uid}/events", timeout=600) as stream:
        for line in stream.iter_lines():
            if line.startswith("event: end"):
                break
    elapsed = time.perf_counter() - started
    run = client.get(f"{url}/api/runs/{uid}").json()
    if run["status"] != "SUCCESSFUL":
        raise BenchError(f"bench run {uid} ended {run['status']}: {run.get('reason')} {run['jobs'][:3]}")
    return elapsed, run


def platform_cpu(pid: int) -> float:
    """CPU seconds of the platform, its live descendants, and its children already reaped (local steps)."""
    total = 0
    for index, member in enumerate(process_tree(pid)):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            if index == 0:
                raise BenchError(f"the platform process {pid} is gone") from None
            continue  # a step that ended between listing and reading: its time is in its parent's cutime
        total += int(fields[11]) + int(fields[12])
        if index == 0:
            total += int(fields[13]) + int(fields[14])  # cutime, cstime: reaped children
    return total / CLK_TCK


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure_chain(
    running: RunningPlatform, body: dict[str, Any], anchor: Any, rounds: int, label: str
) -> dict[str, Any]:
    """Interleaved rounds of (anchor: 20 direct executions, pipeline run); per-step added ms.

    Also the CPU time of the platform's processes (`trackside up` and the jobs it started) per step,
    in each: wall times on a loaded shared machine drift, CPU time much less.
    """
    added, anchors, walls, cpu_direct, cpu_pipeline = [], [], [], [], []

    def cpu() -> float:
        return platform_cpu(running.process.pid)

    with httpx.Client(headers=running.auth, timeout=60) as client:
        run_and_time(client, running.url, body)  # warm-up: imports, caches, connection pools
        anchor(client)
        for index in range(rounds):
            c0, t0 = cpu(), time.perf_counter()
            anchor(client)
            direct = time.perf_counter() - t0
            c1 = cpu()
            wall, _ = run_and_time(client, running.url, body)
            c2 = cpu()
            cpu_direct.append((c1 - c0) * 1000 / STEPS)
            cpu_pipeline.append((c2 - c1) * 1000 / STEPS)
            anchors.append(direct * 1000 / STEPS)
            walls.append(wall * 1000 / STEPS)
            added.append((wall - direct) * 1000 / STEPS)
            log(f"{label} round {index + 1}: direct {direct * 1000:.0f} ms, pipeline {wall * 1000:.0f} ms")
    return {
        "rounds": rounds,
        "direct_ms_per_step_p50": round(median(anchors), 2),
        "pipeline_ms_per_step_p50": round(median(walls), 2),
        "added_ms_per_step_p50": round(median(added), 2),
        "added_ms_per_step_p99": round(pct(added, 0.99), 2),
        "ratio_vs_direct": round(median(walls) / max(median(anchors), 1e-6), 2),
        "platform_cpu_ms_per_step_direct": round(median(cpu_direct), 2),
        "platform_cpu_ms_per_step_pipeline": round(median(cpu_pipeline), 2),
    }


def burst(running: RunningPlatform, runs: int) -> dict[str, Any]:
    body = command_chain("local")
    body["jobs"] = {k: v for k, v in list(body["jobs"].items())[:10]}
    pid = running.process.pid
    rss_before = status_kib(pid, "VmRSS")
    started = time.perf_counter()
    with httpx.Client(headers=running.auth, timeout=120) as client:

        def submit(_: int) -> str:
            response = client.post(f"{running.url}/api/runs", json=body)
            if response.status_code != 202:
                raise BenchError(f"POST /api/runs answered {response.status_code}: {response.text}")
            return str(response.json()["metadata"]["uid"])

        with ThreadPoolExecutor(16) as pool:
            uids = list(pool.map(submit, range(runs)))
        submitted = time.perf_counter() - started
        deadline = time.monotonic() + 1800
        statuses: dict[str, str] = {}
        while time.monotonic() < deadline:
            items = client.get(f"{running.url}/api/runs", params={"limit": runs * 4}).json()["items"]
            statuses = {i["metadata"]["uid"]: i["status"] for i in items if i["metadata"]["uid"] in set(uids)}
            if len(statuses) == runs and all(s not in ("PENDING", "RUNNING") for s in statuses.values()):
                break
            time.sleep(0.2)
        drained = time.perf_counter() - started
    counts = {s: list(statuses.values()).count(s) for s in sorted(set(statuses.values()))}
    lost = runs - len(statuses)
    return {
        "runs": runs,
        "steps": runs * 10,
        "submit_s": round(submitted, 2),
        "drain_s": round(drained, 2),
        "steps_per_s": round(runs * 10 / drained, 1),
        "statuses": counts,
        "lost": lost,
        "rss_mib_before": round(rss_before / 1024, 1),
        "peak_rss_mib_after": round(status_kib(pid, "VmHWM") / 1024, 1),
    }


def run(profile: Profile) -> dict[str, Any]:
    rounds = 3 if profile.quick else 9
    results: dict[str, Any] = {"steps_per_chain": STEPS}
    with workdir("pipelines") as tmp:
        with platform(tmp / "data", env=ENV) as running:
            log("deploying the adder")
            deploy_and_wait(running, REPO_ROOT / "examples" / "adder")
            perform = f"{running.url}/pub/job/adder/latest/api/v1/perform"

            def direct_calls(client: httpx.Client) -> None:
                value = 0
                for _ in range(STEPS):
                    value = client.post(perform, json={"a": value, "b": 1}).json()
                if value != STEPS:
                    raise BenchError(f"the adder answered {value} after {STEPS} calls")

            def direct_local(_: httpx.Client) -> None:
                for _ in range(STEPS):
                    subprocess.run(["sh", "-c", "true"], check=True)

            results["call"] = measure_chain(running, call_chain(), direct_calls, rounds, "call")
            results["local"] = measure_chain(running, command_chain("local"), direct_local, rounds, "local")
            if _docker_ready():

                def direct_docker(_: httpx.Client) -> None:
                    for _ in range(STEPS):
                        subprocess.run(
                            ["docker", "run", "--rm", "--network", "host", "--entrypoint", "sh", IMAGE, "-c", "true"],
                            check=True,
                            capture_output=True,
                        )

                docker_rounds = 1 if profile.quick else 2
                results["docker"] = measure_chain(
                    running, command_chain("docker"), direct_docker, docker_rounds, "docker"
                )
            else:
                results["docker"] = {"skipped": f"no Docker engine with {IMAGE}"}
        with platform(tmp / "burst" / "data", env=ENV) as running:
            count = 40 if profile.quick else 200
            log(f"burst: {count} runs of 10 steps")
            results["burst"] = burst(running, count)
    call = results["call"]["added_ms_per_step_p50"]
    lost = results["burst"]["lost"] + sum(n for s, n in results["burst"]["statuses"].items() if s != "SUCCESSFUL")
    results["targets"] = {
        "call_added_ms_per_step_p50": {
            "value": call,
            "target": f"< {TARGET_CALL_ADDED_MS:g}",
            "met": call < TARGET_CALL_ADDED_MS,
        },
        "burst_runs_lost_or_failed": {"value": lost, "target": "0", "met": lost == 0},
    }
    return results


def _docker_ready() -> bool:
    try:
        result = subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def markdown(r: dict[str, Any]) -> list[str]:
    """The section of docs/benchmarks.md."""
    out = [
        "## Pipelines: per-step overhead and a burst of runs",
        "",
        f"Chains of {r['steps_per_chain']} steps, each step depending on the one before, run on `trackside up`",
        "(SQLite store) and timed from `POST /api/runs` to the end of the run's event stream; the anchor is the",
        "same 20 executions done directly by the client in the same round. Added per step = (pipeline -",
        "direct) / 20. Platform CPU is the utime+stime of `trackside up` and the processes it started (job",
        "replicas, local steps), per step, in each phase: the load-independent part of the cost.",
        "",
        "| chain | direct ms/step (p50) | pipeline ms/step (p50) | added ms/step p50 | added p99 | ratio |"
        " platform CPU ms/step direct / pipeline | rounds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    anchors = {
        "call": "`call` to the adder vs 20 POSTs through the gateway",
        "local": "`local` `true` vs `sh -c true`",
        "docker": "`docker` `true` vs `docker run --rm`",
    }
    for name, what in anchors.items():
        row = r.get(name) or {}
        if "skipped" in row or not row:
            out.append(f"| {what} | skipped: {row.get('skipped', 'not measured')} | | | | | | |")
            continue
        out.append(
            f"| {what} | {row['direct_ms_per_step_p50']} | {row['pipeline_ms_per_step_p50']} | "
            f"**{row['added_ms_per_step_p50']}** | {row['added_ms_per_step_p99']} | {row['ratio_vs_direct']}x | "
            f"{row['platform_cpu_ms_per_step_direct']} / {row['platform_cpu_ms_per_step_pipeline']} | {row['rounds']} |"
        )
    b = r["burst"]
    out += [
        "",
        f"Burst: {b['runs']} runs of 10 local `true` steps posted at once by 16 client threads ({b['submit_s']} s to",
        f"submit): ended {json.dumps(b['statuses'])}, {b['lost']} lost; drained in {b['drain_s']} s "
        f"({b['steps_per_s']} steps/s). Platform RSS {b['rss_mib_before']} MiB before, peak {b['peak_rss_mib_after']}"
        " MiB after (the whole `trackside up` process: gateway, lifecycle, scheduler).",
    ]
    return out
