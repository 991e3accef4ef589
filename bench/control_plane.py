"""Control plane at scale: 10,000 jobs in the store, then listing, version resolution and 50 concurrent deploys.

The 10,000 rows are written straight into the store (through Trackside's own models, on the
platform's SQLite file, before it starts): deploying them through the API would take hours. They sit
on an infrastructure target that does not exist here, so the supervisor keeps their rows as they are
while still reading all of them on every pass. The anchor is a second platform with an empty store
(one real job), measured in the same rounds.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert

from bench.common import BenchError, Profile, log, median, run_wrk, status_kib, workdir, wrk_script
from bench.jobs import ADDER, BODY
from bench.platform import deploy_and_wait, deploy_directory, platform, write_job

JOB = "bench-cp-adder"
VERSIONS_PER_FAMILY = 10
SYNTHETIC_TARGET = "bench-synthetic"
TARGET_LIST_MS = 200.0
TARGET_RESOLUTION_RATIO = 1.25  # "unaffected": within 25% of the empty store's


def fill_store(database_url: str, count: int) -> float:
    """Insert `count` job rows (families of VERSIONS_PER_FAMILY versions); returns seconds taken."""
    from trackside.store.database import Database
    from trackside.store.models import Job, JobFamily

    started = time.monotonic()
    db = Database(database_url)
    db.migrate()
    families = [
        {"id": str(uuid.uuid4()), "name": f"bench-job-{i:05d}"} for i in range(max(1, count // VERSIONS_PER_FAMILY))
    ]
    rows = []
    for index in range(count):
        family = families[index // VERSIONS_PER_FAMILY % len(families)]
        version = f"1.0.{index % VERSIONS_PER_FAMILY}"
        rows.append(
            {
                "id": str(uuid.uuid4()),
                "family_id": family["id"],
                "name": family["name"],
                "version": version,
                "status": "running",
                "manifest": (
                    f"name: {family['name']}\nowner_email: bench@example.com\nversion: {version}\n"
                    "jobtype: python3:latest\njobtype_extra:\n  entrypoint_path: adder.py\n"
                ),
                "internal_name": "127.0.0.1:9",
                "replica_internal_names": ["127.0.0.1:9"],
                "infrastructure_target": SYNTHETIC_TARGET,
                "deployed_by": "admin",
                "image_tag": "bench",
                "infrastructure_stats": {},
            }
        )
    with db.engine.begin() as connection:
        connection.execute(insert(JobFamily), families)
        connection.execute(insert(Job), rows)
    db.engine.dispose()
    return time.monotonic() - started


def run(profile: Profile) -> dict[str, Any]:
    count = profile.store_jobs
    results: dict[str, Any] = {"store_jobs": count}
    with workdir("control-plane") as tmp:
        big_dir, empty_dir = tmp / "big" / "data", tmp / "empty" / "data"
        big_dir.mkdir(parents=True)
        results["fill_store_s"] = round(fill_store(f"sqlite:///{big_dir / 'trackside.db'}", count), 2)
        log(f"control plane: {count} jobs written into the store in {results['fill_store_s']} s")
        job_dir = write_job(tmp / "job", JOB, ADDER.lstrip(), entrypoint="adder.py")
        env = {"TRACKSIDE_GATEWAY_CACHE_TTL": "0"}  # every gateway call resolves its version anew
        with contextlib.ExitStack() as stack:
            platforms = _start_platforms(stack, {"store_full": big_dir, "store_empty": empty_dir}, env, job_dir)
            big = platforms["store_full"]
            listing: dict[str, list[float]] = {k: [] for k in platforms}
            resolution: dict[str, list[float]] = {k: [] for k in platforms}
            scripts = {k: wrk_script(tmp, BODY, {"X-Racetrack-Auth": p.admin_token}) for k, p in platforms.items()}
            expected = {"store_full": count + 1, "store_empty": 1}
            for round_no in range(profile.rounds):
                for key, running in platforms.items():
                    listing[key] += _time_listing(running, profile.listing_calls, expected[key])
                    measured = run_wrk(
                        f"{running.url}/pub/job/{JOB}/latest/api/v1/perform",
                        scripts[key],
                        connections=1,
                        duration_s=profile.latency_duration_s,
                    )
                    resolution[key].append(measured.p50_ms)
                    log(
                        f"control plane round {round_no + 1} {key}: GET /job median "
                        f"{median(listing[key][-profile.listing_calls :]):.0f} ms, gateway call resolving `latest` "
                        f"p50 {measured.p50_ms:.2f} ms"
                    )
            rss_before = status_kib(big.process.pid, "VmHWM")
            deploys = _concurrent_deploys(big, tmp / "many", profile.concurrent_deploys)
            rss_after = status_kib(big.process.pid, "VmHWM")
            log(
                f"control plane: {deploys['count']} concurrent deploys: {deploys['succeeded']} done, "
                f"{len(deploys['errors'])} errors, in {deploys['elapsed_s']} s; peak RSS {rss_after / 1024:.0f} MiB"
            )
    lists = {k: round(median(v), 1) for k, v in listing.items()}
    resolves = {k: round(median(v), 3) for k, v in resolution.items()}
    ratio = resolves["store_full"] / resolves["store_empty"]
    results.update(
        list_jobs_ms=lists,
        resolution_p50_ms=resolves,
        resolution_ratio_vs_empty=round(ratio, 2),
        concurrent_deploys=deploys,
        platform_peak_rss_mib={
            "before_deploys": round(rss_before / 1024, 1),
            "after_deploys": round(rss_after / 1024, 1),
        },
        targets={
            "list_jobs_ms": {
                "value": lists["store_full"],
                "target": f"<= {TARGET_LIST_MS:g}",
                "met": lists["store_full"] <= TARGET_LIST_MS,
            },
            "resolution_ratio_vs_empty": {
                "value": round(ratio, 2),
                "target": f"<= {TARGET_RESOLUTION_RATIO:g}",
                "met": ratio <= TARGET_RESOLUTION_RATIO,
            },
            "concurrent_deploys_errors": {"value": len(deploys["errors"]), "target": "0", "met": not deploys["errors"]},
        },
    )
    return results


def _start_platforms(
    stack: contextlib.ExitStack, data_dirs: dict[str, Path], env: dict[str, str], job_dir: Path
) -> dict[str, Any]:
    """Start the platforms and deploy the job on each, all at once; each is stopped when `stack` closes."""

    def start(data_dir: Path) -> tuple[Any, Any]:
        manager = platform(data_dir, env=env)
        running = manager.__enter__()
        try:
            deploy_and_wait(running, job_dir)
        except BaseException:
            manager.__exit__(None, None, None)
            raise
        return manager, running

    with ThreadPoolExecutor(max_workers=len(data_dirs)) as pool:
        futures = {key: pool.submit(start, data_dir) for key, data_dir in data_dirs.items()}
    out: dict[str, Any] = {}
    error: BaseException | None = None
    for key, future in futures.items():
        exc = future.exception()
        if exc is not None:
            error = error or exc
            continue
        manager, running = future.result()
        stack.push(manager.__exit__)
        out[key] = running
    if error is not None:
        raise error
    return out


def _time_listing(running: Any, calls: int, expected: int) -> list[float]:
    """Milliseconds per GET /lifecycle/api/v1/job, each checked to return every job."""
    times = []
    with httpx.Client(headers=running.auth, timeout=120) as client:
        for _ in range(calls):
            started = time.perf_counter()
            response = client.get(f"{running.api}/job")
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise BenchError(f"GET /job answered {response.status_code}: {response.text[:500]}")
            got = len(response.json())
            if got != expected:
                raise BenchError(f"GET /job returned {got} jobs, expected {expected}")
            times.append(elapsed)
    return times


def _concurrent_deploys(running: Any, root: Path, count: int) -> dict[str, Any]:
    """`count` threads POST /deploy at once (distinct small jobs); waits for every deployment to end."""
    dirs = [
        write_job(root / str(i), f"bench-many-{i:03d}", ADDER.lstrip(), entrypoint="adder.py") for i in range(count)
    ]
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def one(directory: Path) -> bool:
        barrier.wait()
        try:
            response = deploy_directory(running, directory)
            if response.status_code not in (200, 201):
                raise BenchError(f"POST /deploy answered {response.status_code}: {response.text[:300]}")
            deployment_id = response.json()["id"]
            with httpx.Client(headers=running.auth, timeout=60) as client:
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    body = client.get(f"{running.api}/deploy/{deployment_id}").json()
                    if body["status"] == "done":
                        return True
                    if body["status"] != "in_progress":
                        raise BenchError(f"deployment failed: {body.get('error')}")
                    time.sleep(0.25)
            raise BenchError("deployment did not finish within 600 s")
        except Exception as exc:  # every failure is a result here: counted and reported
            with lock:
                errors.append(f"{directory.name}: {exc}")
            return False

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=count) as pool:
        done = list(pool.map(one, dirs))
    return {
        "count": count,
        "succeeded": sum(done),
        "errors": errors,
        "elapsed_s": round(time.monotonic() - started, 2),
    }
