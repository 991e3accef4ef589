"""Installs what the benchmarks need: wrk, nginx, valgrind (Debian), racetrack-job-runner (PyPI, own venv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.common import BenchError, log

RUNNER_REQUIREMENT = "racetrack-job-runner==1.18.0"
CACHE_DIR = Path.home() / ".cache" / "trackside-bench"
RUNNER_VENV = CACHE_DIR / "racetrack-job-runner-1.18.0"


def ensure_system_tools(tools: tuple[str, ...] = ("wrk", "nginx")) -> None:
    """`apt-get install -y` the Debian packages of missing tools (needs root, or fails saying so)."""
    missing = [tool for tool in tools if _which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0:
        raise BenchError(f"{', '.join(missing)} missing; install with: sudo apt-get install -y {' '.join(missing)}")
    log(f"installing {', '.join(missing)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    update = subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, env=env)
    if update.returncode != 0:
        raise BenchError(f"apt-get update failed:\n{update.stderr[-2000:]}")
    done = subprocess.run(["apt-get", "install", "-y", "-q", *missing], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise BenchError(f"apt-get install {' '.join(missing)} failed:\n{done.stderr[-2000:]}")
    still = [tool for tool in missing if _which(tool) is None]
    if still:
        raise BenchError(f"{', '.join(still)} still missing after apt-get install")


def _which(tool: str) -> str | None:
    # nginx lives in /usr/sbin, which a non-login PATH may lack.
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/local/sbin")


def nginx_binary() -> str:
    found = _which("nginx")
    if found is None:
        raise BenchError("nginx is not installed")
    return found


def uv_binary() -> str:
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        raise BenchError("uv not found (it is a dev dependency of the project venv)")
    return found


def runner_python() -> Path:
    """The Python of a virtualenv holding racetrack-job-runner 1.18.0, created on first use."""
    python = RUNNER_VENV / "bin" / "python"
    marker = RUNNER_VENV / ".installed"
    if python.exists() and marker.exists():
        return python
    log(f"installing {RUNNER_REQUIREMENT} into {RUNNER_VENV}")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    uv = uv_binary()
    made = subprocess.run(
        [
            uv,
            "venv",
            "-q",
            "--clear",
            "--python",
            f"{sys.version_info.major}.{sys.version_info.minor}",
            str(RUNNER_VENV),
        ],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        raise BenchError(f"uv venv failed:\n{made.stderr[-2000:]}")
    env = {**os.environ, "VIRTUAL_ENV": str(RUNNER_VENV)}
    installed = subprocess.run(
        [uv, "pip", "install", "-q", "--compile-bytecode", RUNNER_REQUIREMENT], capture_output=True, text=True, env=env
    )
    if installed.returncode != 0:
        raise BenchError(f"uv pip install {RUNNER_REQUIREMENT} failed:\n{installed.stderr[-2000:]}")
    marker.write_text(RUNNER_REQUIREMENT + "\n")
    return python


def ensure_all(need_runner: bool, need_tools: bool, need_valgrind: bool = False) -> Path | None:
    if need_tools:
        ensure_system_tools()
    if need_valgrind:
        ensure_system_tools(("valgrind",))
    return runner_python() if need_runner else None
