"""Gateway: the same deployed job called directly, through Trackside's gateway, and through nginx.

The gateway is the real one: `trackside up` (lifecycle, supervisor and gateway in one process) with
the adder deployed on the local target, called with the admin's token (so the token check and its
cached decision are on the path). nginx proxies to the same replica with a keep-alive upstream.
The platform, its replica and nginx are pinned to the server core, wrk to the client core.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.common import (
    SERVER_CORE,
    BenchError,
    Profile,
    Server,
    WrkResult,
    free_port,
    log,
    median,
    pid_listening_on,
    pin_pid,
    process_tree,
    run_wrk,
    servers,
    start_server,
    status_kib,
    summarize,
    warm_up,
    workdir,
    wrk_script,
)
from bench.jobs import ADDER, BODY
from bench.platform import deploy_and_wait, platform, replica_address, write_job
from bench.setup import nginx_binary

JOB = "bench-adder"
VERSION = "0.0.1"
PATH = f"/pub/job/{JOB}/{VERSION}/api/v1/perform"
THROUGHPUT_CONNECTIONS = 64
TARGET_RATIO = 0.6
TARGET_ADDED_MS = 1.0

NGINX_CONF = """
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream job {{ server 127.0.0.1:{upstream}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://job;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def start_nginx(tmp: Path, upstream_port: int) -> Server:
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, upstream=upstream_port, port=port))
    command = [nginx_binary(), "-c", str(conf), "-p", str(tmp), "-g", "daemon off;"]
    return start_server(
        "nginx",
        command,
        port,
        cwd=tmp,
        env=dict(os.environ),
        ready_path=PATH,
        ready_method="POST",
        ready_body={"a": 1, "b": 2},
        log_dir=tmp,
        core=SERVER_CORE,
    )


def run(profile: Profile) -> dict[str, Any]:
    with workdir("gateway") as tmp:
        job_dir = write_job(tmp / "job", JOB, ADDER.lstrip(), version=VERSION, entrypoint="adder.py")
        with platform(tmp / "data", core=SERVER_CORE) as running, servers() as started:
            deploy_and_wait(running, job_dir)
            _host, job_port = replica_address(running, JOB, VERSION)
            job_pid = pid_listening_on(job_port)
            pin_pid(job_pid, SERVER_CORE)
            replica_rss_mib = round(sum(status_kib(pid, "VmRSS") for pid in process_tree(job_pid)) / 1024, 1)
            nginx = start_nginx(tmp, job_port)
            started.append(nginx)
            nginx_pids = process_tree(nginx.pid)
            script = wrk_script(tmp, BODY, {"X-Racetrack-Auth": running.admin_token})
            subjects = {
                "direct": f"http://127.0.0.1:{job_port}{PATH}",
                "trackside": f"{running.url}{PATH}",
                "nginx": f"http://127.0.0.1:{nginx.port}{PATH}",
            }
            proxy_pids = {"direct": [], "trackside": [running.process.pid], "nginx": nginx_pids}
            for url in subjects.values():
                warm_up(url, script, THROUGHPUT_CONNECTIONS, profile.warmup_s)
            throughput: dict[str, list[WrkResult]] = {s: [] for s in subjects}
            latency: dict[str, list[WrkResult]] = {s: [] for s in subjects}
            for round_no in range(profile.rounds):
                for subject, url in subjects.items():
                    pids = {"job": [job_pid]}
                    if proxy_pids[subject]:
                        pids["proxy"] = proxy_pids[subject]
                    measured = run_wrk(
                        url,
                        script,
                        connections=THROUGHPUT_CONNECTIONS,
                        duration_s=profile.duration_s,
                        measure_pids=pids,
                    )
                    throughput[subject].append(measured)
                    log(
                        f"gateway c{THROUGHPUT_CONNECTIONS} round {round_no + 1} {subject}: {measured.rps:,.0f} rps, "
                        f"CPU/req {measured.cpu_us_per_request}"
                    )
                for subject, url in subjects.items():
                    measured = run_wrk(url, script, connections=1, duration_s=profile.latency_duration_s)
                    latency[subject].append(measured)
                    log(f"gateway c1 round {round_no + 1} {subject}: p50 {measured.p50_ms:.3f} ms")
            if running.process.poll() is not None:
                raise BenchError("trackside up exited during the gateway benchmark")
    return {**_results(throughput, latency), "replica_rss_mib": replica_rss_mib}


def _results(throughput: dict[str, list[WrkResult]], latency: dict[str, list[WrkResult]]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "method": "trackside up (gateway + lifecycle + supervisor in one process) with the adder deployed on the "
        "local target, admin token on every call; nginx 1 worker, keep-alive upstream; all servers on one core",
        "throughput_connections": THROUGHPUT_CONNECTIONS,
        "throughput": {s: summarize(r) for s, r in throughput.items()},
        "latency_c1": {s: summarize(r) for s, r in latency.items()},
    }
    added: dict[str, float] = {}
    for subject in ("trackside", "nginx"):
        per_round = [p.p50_ms - d.p50_ms for p, d in zip(latency[subject], latency["direct"], strict=True)]
        added[subject] = round(median(per_round), 3)
    results["p50_added_ms_c1"] = added
    ratio = results["throughput"]["trackside"]["rps"] / results["throughput"]["nginx"]["rps"]
    results["rps_ratio_vs_nginx"] = round(ratio, 2)
    results["targets"] = {
        "rps_ratio_vs_nginx": {
            "value": round(ratio, 2),
            "target": f">= {TARGET_RATIO:g}",
            "met": ratio >= TARGET_RATIO,
        },
        "p50_added_ms_c1": {
            "value": added["trackside"],
            "target": f"< {TARGET_ADDED_MS:g}",
            "met": added["trackside"] < TARGET_ADDED_MS,
        },
    }
    return results
