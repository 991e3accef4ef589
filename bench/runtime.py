"""Job runtime: Trackside's runtime vs Racetrack's runner serving the same class, side by side.

Both servers run on the server core at once (only one is loaded at a time); wrk runs on the client
core. Rounds interleave the two servers; figures are medians, the ratio is ours over theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from bench.common import (
    Profile,
    Server,
    log,
    run_wrk,
    servers,
    start_all,
    summarize,
    warm_up,
    workdir,
    wrk_script,
)
from bench.jobs import BODY, JOBS, write_job_file
from bench.servers import PERFORM_PATH, start_racetrack_job, start_trackside_job
from bench.setup import runner_python

TARGET_ADDER_RATIO = 10.0


def run(profile: Profile) -> dict[str, Any]:
    runner = runner_python()
    results: dict[str, Any] = {"connections": list(profile.connections), "jobs": {}}
    rounds: dict[tuple[str, str, int], list[Any]] = {}
    with workdir("runtime") as tmp, servers() as started:
        script = wrk_script(tmp, BODY, {})
        starters: dict[str, Callable[[], Server]] = {}
        for kind in JOBS:
            job_file = write_job_file(tmp / kind, kind)
            starters[f"trackside/{kind}"] = partial(start_trackside_job, job_file, tmp, name=f"trackside-{kind}")
            starters[f"racetrack/{kind}"] = partial(
                start_racetrack_job, runner, job_file, tmp, name=f"racetrack-{kind}"
            )
        running = start_all(started, starters)
        for kind in JOBS:
            subjects = {subject: running[f"{subject}/{kind}"] for subject in ("trackside", "racetrack")}
            for server in subjects.values():
                warm_up(f"http://127.0.0.1:{server.port}{PERFORM_PATH}", script, 16, profile.warmup_s)
            for round_no in range(profile.rounds):
                for conns in profile.connections:
                    for subject, server in subjects.items():
                        measured = run_wrk(
                            f"http://127.0.0.1:{server.port}{PERFORM_PATH}",
                            script,
                            connections=conns,
                            duration_s=profile.duration_s,
                            measure_pids={"server": [server.pid]},
                        )
                        rounds.setdefault((kind, subject, conns), []).append(measured)
                        log(
                            f"runtime {kind} c{conns} round {round_no + 1} {subject}: {measured.rps:,.0f} rps, "
                            f"p50 {measured.p50_ms:.2f} ms, {measured.cpu_us_per_request['server']:.0f} us CPU/req"
                        )
    for kind in JOBS:
        job: dict[str, Any] = {}
        for conns in profile.connections:
            ours_s = summarize(rounds[(kind, "trackside", conns)])
            theirs_s = summarize(rounds[(kind, "racetrack", conns)])
            job[f"c{conns}"] = {
                "trackside": ours_s,
                "racetrack": theirs_s,
                "rps_ratio": round(ours_s["rps"] / theirs_s["rps"], 2),
            }
        results["jobs"][kind] = job
    adder_ratio = results["jobs"]["adder"]["c16"]["rps_ratio"]
    results["targets"] = {
        "adder_rps_ratio_c16": {
            "value": adder_ratio,
            "target": f">= {TARGET_ADDER_RATIO:g}",
            "met": adder_ratio >= TARGET_ADDER_RATIO,
        },
    }
    return results
