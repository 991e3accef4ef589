"""Job virtualenvs: one per distinct set of requirements, made by uv, shared between builds.

A venv's key hashes everything that decides its content (the normalized requirements, files they
include, the interpreter, the build env, a schema version), so jobs and versions with the same
requirements share one and a cached redeploy costs no install at all. Concurrent builds are
serialized per key with an fcntl lock; a venv is built in its final path (venvs are not relocatable)
and only counts once its `.complete` marker is written, so a crashed build leaves nothing that a
later build would trust. A complete venv is never rebuilt in place, since running jobs use it:
`--no-cache` makes a new generation next to it and points the key at that.
"""

from __future__ import annotations

import collections
import fcntl
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from trackside.errors import BuildFailed

SCHEMA_VERSION = "trackside-venv-1"
MARKER = ".complete"
INSTALL_TIMEOUT_S = 1800.0
_UV_CHATTER = ("Using Python", "Using CPython", "Activate with")
_SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules"}

Log = Callable[[str], None]


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str


def uv_bin() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


# --- interpreter --------------------------------------------------------------------------------


def find_interpreter(python_version: str | None, env: dict[str, str]) -> Interpreter:
    """The server's own Python when it satisfies `python_version`, else one uv finds on the host."""
    spec = (python_version or "").strip().split("-")[0]
    if not spec or _running_python_matches(spec):
        return Interpreter(sys.executable, platform.python_version())
    result = subprocess.run(
        [uv_bin(), "python", "find", "--no-project", spec],
        env={**env, "UV_PYTHON_DOWNLOADS": env.get("UV_PYTHON_DOWNLOADS", "never")},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise BuildFailed(
            f"python_version {python_version!r} (jobtype_extra.python_version) is not installed on the "
            f"build host: {result.stderr.strip() or 'uv found no such interpreter'}"
        )
    return Interpreter(result.stdout.strip().splitlines()[-1], spec)


def _running_python_matches(spec: str) -> bool:
    if not re.fullmatch(r"\d+(\.\d+){0,2}", spec):
        return False
    return all(int(part) == have for part, have in zip(spec.split("."), sys.version_info[:3], strict=False))


# --- the key ------------------------------------------------------------------------------------


_INCLUDE = re.compile(r"^(?P<flag>-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+|(?=[^\s=-]))(?P<path>\S+)$")
_LOCAL = re.compile(r"^(-e|--editable|\.|/|file:)|@\s*file:")


def requirements_fingerprint(requirements: Path | None, workspace: Path) -> str:
    """Normalized requirements text, files they include inlined; local-path requirements pin the tree."""
    if requirements is None:
        return ""
    lines, local = _normalized(requirements, set())
    text = "\n".join(lines)
    if local:  # `-e .` or `./pkg`: the venv depends on this very source tree, at this path
        text += f"\n# local source {workspace.resolve()} {tree_hash(workspace)}"
    return text


def _normalized(path: Path, seen: set[Path]) -> tuple[list[str], bool]:
    seen.add(path.resolve())
    try:
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return [f"# unreadable {path.name}"], False
    raw = re.sub(r"\\\r?\n", " ", raw)  # line continuations
    lines: list[str] = []
    local = False
    for line in raw.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not line:
            continue
        line = re.sub(r"\s+", " ", line)
        match = _INCLUDE.match(line)
        if match:
            included = (path.parent / match.group("path")).resolve()
            lines.append(f"{match.group('flag')} <{match.group('path')}>")
            if included not in seen and included.is_file():
                sub, sub_local = _normalized(included, seen)
                lines += [f"  {s}" for s in sub]
                local = local or sub_local
            continue
        local = local or bool(_LOCAL.search(line))
        lines.append(line)
    return lines, local


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            try:
                digest.update(path.read_bytes())
            except OSError:
                digest.update(b"<unreadable>")
            digest.update(b"\0")
    return digest.hexdigest()


def venv_key(fingerprint: str, interpreter: Interpreter, build_env: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for part in (
        SCHEMA_VERSION,
        interpreter.path,
        interpreter.version,
        fingerprint,
        json.dumps(sorted(build_env.items())),
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    # 128 bits: unique enough, and short enough to keep script shebangs under the kernel's limit.
    return digest.hexdigest()[:32]


# --- the cache ----------------------------------------------------------------------------------


class VenvCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self, key: str, build: Callable[[Path], None], log: Log, no_cache: bool = False) -> Path:
        """The complete venv for `key`, built by `build(path)` when there is none (or `no_cache`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        on_wait = lambda: log(f"waiting for another build of virtualenv {key}")  # noqa: E731
        with _locked(self.root / f"{key}.lock", on_wait):
            current = self.current(key)
            if current is not None and not no_cache:
                log(f"reusing virtualenv {key}")
                return current
            self._remove_incomplete(key)
            target = self.root / key
            if (target / MARKER).exists():
                target = self.root / f"{key}-{secrets.token_hex(4)}"
            log(f"creating virtualenv {key}" + (" (--no-cache)" if no_cache else ""))
            started = time.monotonic()
            try:
                build(target)
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)
                raise
            (target / MARKER).write_text(json.dumps({"key": key, "created": time.time()}))
            self._point(key, target)
            log(f"virtualenv {key} ready in {time.monotonic() - started:.2f} s")
            return target

    def current(self, key: str) -> Path | None:
        pointer = self.root / f"{key}.current"
        try:
            name = pointer.read_text().strip()
        except FileNotFoundError:
            name = key
        path = self.root / name
        return path if (path / MARKER).is_file() else None

    def _point(self, key: str, target: Path) -> None:
        pointer = self.root / f"{key}.current"
        if target.name == key and not pointer.exists():
            return
        tmp = pointer.with_name(f"{pointer.name}.tmp")
        tmp.write_text(target.name)
        tmp.replace(pointer)

    def _remove_incomplete(self, key: str) -> None:
        for path in [self.root / key, *self.root.glob(f"{key}-*")]:
            if path.is_dir() and not (path / MARKER).exists():
                shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _locked(path: Path, on_wait: Callable[[], None]) -> Iterator[None]:
    with path.open("a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# --- building one -------------------------------------------------------------------------------


def create_venv(
    target: Path,
    interpreter: Interpreter,
    requirements: Path | None,
    workspace: Path,
    env: dict[str, str],
    log: Log,
) -> None:
    """`uv venv` at `target`, then `uv pip install -r requirements` with bytecode compiled."""
    uv = uv_bin()
    rc, tail = run_streaming(
        [uv, "venv", "--no-project", "--python", interpreter.path, str(target)],
        target.parent,
        env,
        lambda line: None if line.startswith("Activate with") else log(line),
    )
    if rc != 0:
        raise BuildFailed(f"creating the virtualenv failed: {_tail_text(tail)}")
    if requirements is None:
        log("no requirements to install")
        return
    rc, tail = run_streaming(
        [
            uv, "pip", "install",
            "--python", str(target / "bin" / "python"),
            "--compile-bytecode",
            "-r", str(requirements),
        ],
        workspace,
        env,
        log,
        timeout=INSTALL_TIMEOUT_S,
    )  # fmt: skip
    if rc != 0:
        raise BuildFailed(f"requirements failed to install: {_tail_text(tail)}")


def _tail_text(tail: list[str]) -> str:
    lines = [line.strip() for line in tail if line.strip() and not line.startswith(_UV_CHATTER)]
    return "\n".join(lines[-10:]) or "(no output)"


def run_streaming(
    cmd: list[str], cwd: Path, env: dict[str, str], log: Log, timeout: float = 300.0
) -> tuple[int, list[str]]:
    """Run `cmd`, passing each output line to `log` as it comes; returns (exit code, last lines)."""
    tail: collections.deque[str] = collections.deque(maxlen=40)
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    timed_out = threading.Event()

    def kill() -> None:
        timed_out.set()
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            log(line)
        rc = proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    if timed_out.is_set():
        tail.append(f"{Path(cmd[0]).name} was stopped after {timeout:g} s")
        return (rc or -9), list(tail)
    return rc, list(tail)
