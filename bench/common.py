"""Shared machinery: measurement settings, pinned processes, wrk runs and their parsing, CPU accounting.

Every figure is measured here or not at all: a failed run raises `BenchError`, which the runner turns
into a non-zero exit, so no benchmark can report a number it did not take.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CORE = 1
CLIENT_CORE = 0


class BenchError(RuntimeError):
    """A measurement could not be taken; the message says which and why."""


@dataclass(frozen=True)
class Profile:
    """How long and how often to measure: the full run, or `--quick` (everything in under a minute)."""

    quick: bool
    rounds: int
    duration_s: float
    warmup_s: float
    latency_duration_s: float
    deploy_rounds: int
    store_jobs: int
    concurrent_deploys: int
    listing_calls: int
    connections: tuple[int, ...]

    @classmethod
    def make(cls, quick: bool) -> Profile:
        if quick:
            return cls(True, 1, 1.0, 0.0, 1.0, 1, 500, 5, 1, (16,))
        return cls(False, 3, 5.0, 1.0, 3.0, 3, 10_000, 50, 2, (16, 64))


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def pinned(core: int) -> list[str]:
    """A `taskset` prefix pinning a command to `core` (nothing on a one-core machine)."""
    return ["taskset", "-c", str(core)] if cpu_count() > 1 else []


def pin_pid(pid: int, core: int) -> None:
    """Pin every thread of a running process to `core`."""
    if cpu_count() > 1:
        subprocess.run(["taskset", "-a", "-cp", str(core), str(pid)], check=True, capture_output=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def median(values: Sequence[float]) -> float:
    if not values:
        raise BenchError("no values to take a median of")
    return float(statistics.median(values))


# --- processes ------------------------------------------------------------------------------------


@dataclass
class Server:
    """A process started by the bench, with its log; stopped (process group) on exit."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def terminate(self) -> None:
        """Ask the process group to stop, without waiting (`stop` waits)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_server(
    name: str,
    command: list[str],
    port: int,
    *,
    cwd: Path,
    env: dict[str, str],
    ready_path: str,
    log_dir: Path,
    core: int | None = SERVER_CORE,
    timeout: float = 60,
    ready_method: str = "GET",
    ready_body: Any = None,
) -> Server:
    """Start `command`, wait until `ready_path` answers 200 on `port`, then pin it (and its children) to `core`.

    Pinned only once ready: start-up is not measured, and several servers starting on one core at
    once (a quick run starts six) would take seconds longer than on all of them."""
    log_path = log_dir / f"{name}.log"
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, process, log_path, port)
    url = f"http://127.0.0.1:{port}{ready_path}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"{name} exited with {process.returncode} before answering:\n{server.logs()}")
        try:
            response = httpx.request(ready_method, url, json=ready_body, timeout=2)
            if response.status_code == 200:
                if core is not None:
                    for pid in process_tree(process.pid):
                        pin_pid(pid, core)
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise BenchError(f"{name} did not answer 200 on {url} within {timeout:.0f} s:\n{server.logs()}")


def start_all(started: list[Server], starters: dict[str, Callable[[], Server]]) -> dict[str, Server]:
    """Run several `start_server` calls at once (start-up is most of a quick run); every server that
    came up is added to `started` (so it is stopped), and the first failure is raised after."""
    with ThreadPoolExecutor(max_workers=len(starters)) as pool:
        futures = {key: pool.submit(start) for key, start in starters.items()}
    out: dict[str, Server] = {}
    error: BaseException | None = None
    for key, future in futures.items():
        exc = future.exception()
        if exc is None:
            out[key] = future.result()
            started.append(out[key])
        elif error is None:
            error = exc
    if error is not None:
        raise error
    return out


@contextlib.contextmanager
def servers() -> Iterator[list[Server]]:
    """Collects servers started inside the block and stops them all when it ends."""
    started: list[Server] = []
    try:
        yield started
    finally:
        for server in started:  # all at once: a quick run stops six servers, some slow to exit
            server.terminate()
        for server in reversed(started):
            server.stop()


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"trackside-bench-{prefix}-") as tmp:
        yield Path(tmp)


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (nginx's workers, a platform's job replicas)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of the processes (all their threads), from /proc/<pid>/stat."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError as exc:
            raise BenchError(f"cannot read CPU time of process {pid}: {exc}") from exc
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLK_TCK


def status_kib(pid: int, key: str) -> int:
    """A `kB` figure (VmRSS, VmHWM) from /proc/<pid>/status."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError as exc:
        raise BenchError(f"cannot read /proc/{pid}/status: {exc}") from exc
    raise BenchError(f"/proc/{pid}/status has no {key}")


def pid_listening_on(port: int) -> int:
    """The pid of the process listening on a loopback TCP port (via /proc/net/tcp socket inodes)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(parts[9])
    if not inodes:
        raise BenchError(f"no process listens on port {port}")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{entry}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in inodes:
                        return int(entry)
    raise BenchError(f"cannot find the process listening on port {port}")


def load_average() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return one, five, fifteen


# --- wrk ------------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        raise BenchError(f"cannot parse a wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass
class WrkResult:
    rps: float
    requests: int
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "rps": round(self.rps, 1),
            "requests": self.requests,
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "cpu_us_per_request": {k: round(v, 1) for k, v in self.cpu_us_per_request.items()},
        }


def wrk_script(directory: Path, body: str | None, headers: dict[str, str], method: str = "POST") -> Path:
    """A wrk Lua script sending `method` with a JSON `body` and `headers` on every request."""
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {_lua_string(body)}")
        lines.append('wrk.headers["Content-Type"] = "application/json"')
    for name, value in headers.items():
        lines.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    path = directory / f"wrk-{abs(hash((body, tuple(headers.items()), method)))}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_wrk(
    url: str,
    script: Path,
    *,
    connections: int,
    duration_s: float,
    measure_pids: dict[str, list[int]] | None = None,
    threads: int = 1,
) -> WrkResult:
    """One wrk run (pinned to the client core); fails on any error or non-2xx answer.

    `measure_pids` names groups of processes whose CPU time over the run is divided by the requests.
    """
    command = [
        *pinned(CLIENT_CORE),
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    before = {name: cpu_seconds(pids) for name, pids in (measure_pids or {}).items()}
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60)
    after = {name: cpu_seconds(pids) for name, pids in (measure_pids or {}).items()}
    out = completed.stdout
    if completed.returncode != 0:
        raise BenchError(f"wrk failed ({completed.returncode}) on {url}:\n{out}\n{completed.stderr}")
    return _parse_wrk(out, url, before, after)


def _parse_wrk(out: str, url: str, before: dict[str, float], after: dict[str, float]) -> WrkResult:
    def find(pattern: str) -> re.Match[str]:
        match = re.search(pattern, out, re.MULTILINE)
        if match is None:
            raise BenchError(f"wrk output for {url} lacks {pattern!r}:\n{out}")
        return match

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise BenchError(f"{non_2xx.group(1)} requests to {url} failed (non-2xx):\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if errors and any(int(n) for n in errors.groups()):
        raise BenchError(f"socket errors calling {url}:\n{out}")
    requests = int(find(r"^\s*(\d+) requests in").group(1))
    if requests == 0:
        raise BenchError(f"wrk completed no request to {url}:\n{out}")
    rps = float(find(r"^Requests/sec:\s*([\d.]+)").group(1))
    p50 = _ms(find(r"^\s*50%\s+(\S+)").group(1))
    p99 = _ms(find(r"^\s*99%\s+(\S+)").group(1))
    cpu = {name: (after[name] - before[name]) / requests * 1e6 for name in before}
    return WrkResult(rps, requests, p50, p99, cpu)


def warm_up(url: str, script: Path, connections: int, seconds: float) -> None:
    """A short unmeasured run, so the first measured round does not pay for imports and caches."""
    if seconds > 0:
        run_wrk(url, script, connections=connections, duration_s=seconds)


def summarize(results: Sequence[WrkResult]) -> dict[str, Any]:
    """Medians over rounds, with every round kept for the JSON."""
    if not results:
        raise BenchError("no rounds measured")
    groups = sorted({k for r in results for k in r.cpu_us_per_request})
    return {
        "rps": round(median([r.rps for r in results]), 1),
        "p50_ms": round(median([r.p50_ms for r in results]), 3),
        "p99_ms": round(median([r.p99_ms for r in results]), 3),
        "cpu_us_per_request": {
            g: round(median([r.cpu_us_per_request[g] for r in results if g in r.cpu_us_per_request]), 1) for g in groups
        },
        "rounds": [r.to_json() for r in results],
    }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
