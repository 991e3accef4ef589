"""Memory per job: resident memory of one idle replica of the adder, ours vs Racetrack's runner.

Each round starts both servers fresh (on the server core), calls perform once so the job is loaded
and the request path has run, lets them settle, and reads VmRSS of each process tree.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import httpx

from bench.common import BenchError, Profile, log, median, process_tree, servers, start_all, status_kib, workdir
from bench.jobs import write_job_file
from bench.servers import PERFORM_PATH, start_racetrack_job, start_trackside_job
from bench.setup import runner_python

SETTLE_S = 1.0


def run(profile: Profile) -> dict[str, Any]:
    runner = runner_python()
    rss: dict[str, list[float]] = {"trackside": [], "racetrack": []}
    with workdir("memory") as tmp:
        job_file = write_job_file(tmp / "job", "adder")
        for round_no in range(profile.rounds):
            with servers() as started:
                start_all(
                    started,
                    {
                        "trackside": partial(start_trackside_job, job_file, tmp, name="trackside"),
                        "racetrack": partial(start_racetrack_job, runner, job_file, tmp, name="racetrack"),
                    },
                )
                for server in started:
                    response = httpx.post(f"http://127.0.0.1:{server.port}{PERFORM_PATH}", json={"a": 1, "b": 2})
                    if response.status_code != 200:
                        raise BenchError(f"{server.name} answered {response.status_code} to perform")
                time.sleep(SETTLE_S)
                for server in started:
                    kib = sum(status_kib(pid, "VmRSS") for pid in process_tree(server.pid))
                    rss[server.name].append(kib / 1024)
                log(
                    f"memory round {round_no + 1}: trackside {rss['trackside'][-1]:.1f} MiB, "
                    f"racetrack {rss['racetrack'][-1]:.1f} MiB"
                )
    ours, theirs = median(rss["trackside"]), median(rss["racetrack"])
    return {
        "rss_mib": {"trackside": round(ours, 1), "racetrack": round(theirs, 1)},
        "rounds_mib": {k: [round(v, 1) for v in values] for k, values in rss.items()},
        "ratio": round(ours / theirs, 2),
        "note": "Trackside's runtime run by the project's Python (its venv has uvloop and the trackside "
        "package importable); a deployed replica runs the same code from its own virtualenv",
    }
