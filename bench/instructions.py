"""Instructions per request (valgrind's cachegrind) of the gateway and the job runtime, this tree vs a base.

Wall-clock figures on these shared machines move by more than the few per cent a change to the hot
path costs; the number of instructions a process executes per request does not. Each subject (a
gateway in front of a job, or the job runtime alone) runs under cachegrind twice, serving a warm-up
and then N1 or N2 identical requests from one keep-alive client; (Ir(N2) - Ir(N1)) / (N2 - N1) is
its cost per request, start-up and shutdown cancelling out. The base is another revision of the
repository (`BENCH_BASE`, default: where this branch left `main`, or the parent commit on `main`)
exported with `git archive`; both trees serve the same job behind the same fixed route, with the
same request: the wrk request of the gateway benchmark (a JSON POST with a token header).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import PYTHON, REPO_ROOT, BenchError, Profile, free_port, log, workdir
from bench.jobs import ADDER, BODY
from bench.servers import JOB_NAME, JOB_VERSION, PERFORM_PATH

TARGET_RATIO = 1.02  # a change may cost at most 2% more instructions per request

# The gateway in front of one upstream, deciding every call from a fixed route (a cache hit, as in
# production once a token was seen): uses only what every revision of the gateway offers.
GATEWAY_DRIVER = """
import asyncio, signal, sys
import uvloop
from trackside.gateway.resolver import Route
from trackside.gateway.server import GatewayServer

class Fixed:
    auth_required = True
    def __init__(self, upstream):
        self.route = Route(sys.argv[3], sys.argv[4], replicas=[upstream], caller="User bench@example.com")
    def resolve_cached(self, name, version, path, token):
        return self.route
    async def resolve(self, name, version, path, token):
        return self.route

async def main():
    server = GatewayServer(Fixed(sys.argv[2]))
    await server.start("127.0.0.1", int(sys.argv[1]))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await server.stop()

uvloop.run(main())
"""

# One keep-alive connection, N identical requests, each answer read whole before the next is sent.
CLIENT = """
import socket, sys
port, count, body = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].encode()
request = (
    b"POST %s HTTP/1.1\\r\\nHost: 127.0.0.1:%d\\r\\nX-Racetrack-Auth: bench-token-0123456789abcdef\\r\\n"
    b"Content-Type: application/json\\r\\nContent-Length: %d\\r\\n\\r\\n%s"
) % (sys.argv[4].encode(), port, len(body), body)
sock = socket.create_connection(("127.0.0.1", port))
buffer = b""
for _ in range(count):
    sock.sendall(request)
    while True:
        head, sep, rest = buffer.partition(b"\\r\\n\\r\\n")
        if sep:
            length = int(head.lower().split(b"content-length: ")[1].split(b"\\r\\n")[0])
            if len(rest) >= length:
                if not head.startswith(b"HTTP/1.1 200"):
                    sys.exit(f"unexpected answer: {head[:200]!r}")
                buffer = rest[length:]
                break
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit("connection closed")
        buffer += chunk
sock.close()
"""


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def base_revision() -> str:
    wanted = os.environ.get("BENCH_BASE")
    if wanted:
        return _git("rev-parse", "--short", wanted)
    head = _git("rev-parse", "HEAD")
    base = _git("merge-base", "HEAD", "main")
    return _git("rev-parse", "--short", base if base != head else "HEAD~1")


def _env(src: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKSIDE_", "JOB_", "VIRTUAL_ENV"))}
    env.update(
        PYTHONPATH=str(src),
        PYTHONHASHSEED="0",
        JOB_NAME=JOB_NAME,
        JOB_VERSION=JOB_VERSION,
        JOB_HOST="127.0.0.1",
        LOG_REQUESTS="false",
    )
    return env


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path | None, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            logs = log_path.read_text()[-2000:] if log_path is not None else ""
            raise BenchError(f"{url}: the process exited ({process.returncode}):\n{logs}")
        try:
            if httpx.get(url, timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise BenchError(f"{url} did not answer within {timeout:.0f} s under cachegrind")


def _requests(client: Path, port: int, count: int) -> None:
    done = subprocess.run(
        [PYTHON, str(client), str(port), str(count), BODY, PERFORM_PATH], capture_output=True, text=True, timeout=900
    )
    if done.returncode != 0:
        raise BenchError(f"the request client failed: {done.stderr.strip()[-500:]}")


def _instructions(
    command: list[str], src: Path, port: int, ready_url: str, client: Path, count: int, tmp: Path, cwd: Path
) -> int:
    """Total instructions of `command` under cachegrind, serving 20 warm-up requests then `count`."""
    out = tmp / f"cachegrind.{port}.out"
    log_path = tmp / f"cachegrind.{port}.log"
    env = {**_env(src), "PORT": str(port)}
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}", *command],
            cwd=cwd,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(ready_url, process, log_path)
        _requests(client, port, 20)
        _requests(client, port, count)
    finally:
        process.terminate()
        process.wait(timeout=300)
    match = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
    if match is None:
        raise BenchError(f"no cachegrind summary in {out}")
    return int(match.group(1))


def run(profile: Profile) -> dict[str, Any]:
    counts = (50, 250) if profile.quick else (100, 600)
    revision = base_revision()
    trees = {"base": Path(), "this": REPO_ROOT / "src"}
    results: dict[str, Any] = {"base_revision": revision, "requests": list(counts), "subjects": {}}
    with workdir("instructions") as tmp:
        base = tmp / "base"
        base.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO_ROOT), "archive", revision, "src"], capture_output=True)
        if archive.returncode != 0:
            raise BenchError(f"git archive {revision} failed: {archive.stderr.decode()[-500:]}")
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        trees["base"] = base / "src"
        (tmp / "adder.py").write_text(ADDER)
        driver = tmp / "gateway_driver.py"
        driver.write_text(GATEWAY_DRIVER)
        client = tmp / "client.py"
        client.write_text(CLIENT)
        # The gateway's upstream: this tree's runtime, outside cachegrind.
        job_port = free_port()
        job = subprocess.Popen(
            [PYTHON, "-m", "trackside.runtime", "--entrypoint-path", "adder.py"],
            cwd=tmp,
            env={**_env(trees["this"]), "PORT": str(job_port)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_ready(f"http://127.0.0.1:{job_port}/ready", job, None, timeout=60)
            for subject in ("gateway", "runtime"):
                per_request: dict[str, float] = {}
                for name, src in trees.items():
                    totals = []
                    for count in counts:
                        port = free_port()
                        if subject == "gateway":
                            command = [
                                PYTHON,
                                str(driver),
                                str(port),
                                f"127.0.0.1:{job_port}",
                                JOB_NAME,
                                JOB_VERSION,
                            ]
                            ready = f"http://127.0.0.1:{port}/pub/live"
                        else:
                            command = [PYTHON, "-m", "trackside.runtime", "--entrypoint-path", "adder.py"]
                            ready = f"http://127.0.0.1:{port}/ready"
                        totals.append(_instructions(command, src, port, ready, client, count, tmp, tmp))
                    per_request[name] = (totals[1] - totals[0]) / (counts[1] - counts[0])
                    log(f"instructions {subject} {name}: {per_request[name]:,.0f} per request")
                ratio = round(per_request["this"] / per_request["base"], 4)
                results["subjects"][subject] = {
                    "base": round(per_request["base"]),
                    "this": round(per_request["this"]),
                    "ratio": ratio,
                }
        finally:
            job.terminate()
            job.wait(timeout=30)
    results["targets"] = {
        f"{subject}_instructions_ratio_vs_base": {
            "value": r["ratio"],
            "target": f"<= {TARGET_RATIO}",
            "met": r["ratio"] <= TARGET_RATIO,
        }
        for subject, r in results["subjects"].items()
    }
    return results


if __name__ == "__main__":  # pragma: no cover - `python -m bench --only instructions` is the way in
    print(run(Profile.make("--quick" in sys.argv)))
