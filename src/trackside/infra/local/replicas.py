"""The replica manager: starts, watches, restarts, adopts and stops a local job's processes.

One manager per local target. Its state files (see `state.py`) say what should run; its memory only
adds what a file can't hold (our `Popen` handles, restart timers). A watcher thread, started on the
first deploy or when state files exist, reaps and restarts crashed replicas with exponential backoff,
rotates their logs, and re-reads the state files every second so that several platform processes
sharing one data dir agree. Only the process holding `owner.lock` restarts or rotates anything, so two
platform processes never both restart the same replica.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import IO

from trackside.build.artifacts import LocalArtifact
from trackside.errors import DeployFailed, InvalidInput
from trackside.infra.local.layout import LocalLayout
from trackside.infra.local.logs import DEFAULT_KEEP, DEFAULT_MAX_BYTES, output_since, rotate_if_needed, tail_lines
from trackside.infra.local.processes import (
    Running,
    base_env,
    free_port,
    port_is_free,
    process_matches,
    spawn,
    stop_processes,
)
from trackside.infra.local.state import ReplicaState, read_state, write_state
from trackside.infra.secrets import SecretFileStore

log = logging.getLogger(__name__)

ERROR_LOG_LINES = 20
# Runtime env vars whose values are credentials: kept with the secrets, never in state files.
SECRET_RUNTIME_VARS = ("AUTH_TOKEN",)
_BIND_FAILURE = re.compile(r"address already in use|errno 98\b|eaddrinuse", re.IGNORECASE)
_MAX_BIND_RETRIES = 5


def describe_exit(code: int | None) -> str:
    if code is None:
        return "process exited"
    if code < 0:
        try:
            return f"process exited with code {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"process exited with code {code}"
    return f"process exited with code {code}"


@dataclass
class Replica:
    state: ReplicaState
    path: Path  # its state file
    log_path: Path
    process: Popen[bytes] | None = None  # None for a process adopted from an earlier platform run
    marker: tuple[int, int, int] | None = None  # (mtime_ns, size, inode) of the state file we last saw
    exited: bool = False
    exit_code: int | None = None
    next_restart_at: float | None = None  # monotonic time of the scheduled restart
    consecutive_crashes: int = 0
    crashes: int = 0  # exits seen by this manager (not counting failed port binds)
    log_offset: int = 0  # where this process's output starts in the log
    bind_retries: int = 0
    new_port: bool = False
    error: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.state.name, self.state.version


@dataclass(frozen=True)
class ReplicaView:
    """A consistent snapshot of one replica, for the monitor."""

    name: str
    version: str
    index: int
    pid: int
    port: int
    tag: str
    running: bool
    exit_code: int | None
    restart_in: float | None
    restart_count: int
    crashes: int
    retrying_bind: bool
    error: str | None
    job_type_version: str
    deployment_timestamp: int
    log_path: Path
    start_time: float = 0.0  # when the replica (its latest process) was started, wall clock

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class ReplicaManager:
    def __init__(
        self,
        data_dir: Path,
        *,
        tick: float = 0.25,
        reconcile_interval: float = 1.0,
        rotate_interval: float = 2.0,
        log_max_bytes: int = DEFAULT_MAX_BYTES,
        log_keep: int = DEFAULT_KEEP,
        stop_grace: float = 5.0,
        max_backoff: float = 30.0,
        healthy_uptime: float = 60.0,
    ) -> None:
        self.layout = LocalLayout(data_dir)
        self.secrets = SecretFileStore(self.layout.secrets_root, self.layout.data_dir, "local")
        self.tick = tick
        self.reconcile_interval = reconcile_interval
        self.rotate_interval = rotate_interval
        self.log_max_bytes = log_max_bytes
        self.log_keep = log_keep
        self.stop_grace = stop_grace
        self.max_backoff = max_backoff
        self.healthy_uptime = healthy_uptime
        self._lock = threading.RLock()
        self._replicas: dict[tuple[str, str], dict[int, Replica]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stoppers: list[threading.Thread] = []
        self._lock_file: IO[bytes] | None = None
        self._owner = False
        self._closed = False
        self._last_reconcile = 0.0
        self._last_rotate = 0.0
        with self._lock:
            self._try_own()
            self._reconcile(startup=True)
            # The supervising process watches from the start: another process may deploy through the
            # state files; others only watch what they start themselves.
            watch = self._owner or bool(self._replicas)
        if watch:
            self.ensure_watcher()

    # ----- public API -------------------------------------------------------------------------

    @property
    def is_owner(self) -> bool:
        return self._owner

    def deploy(
        self,
        name: str,
        version: str,
        tag: str,
        artifact: LocalArtifact,
        runtime_env: dict[str, str],
        secret_env: dict[str, str],
        count: int,
        deployment_timestamp: int,
        keep_previous: bool = False,
    ) -> list[ReplicaView]:
        """Start `count` replicas of the job's deployment `tag`.

        The version's earlier replicas are stopped, or with `keep_previous` left running beside the new
        ones (which take free replica indices) until `retire` or `discard` removes one deployment."""
        if count < 1:
            raise InvalidInput(f"job {name} {version}: replicas must be at least 1, got {count}")
        state_dir = self.layout.job_state_dir(name, version)
        secrets = {k: runtime_env[k] for k in SECRET_RUNTIME_VARS if k in runtime_env}
        secrets.update(secret_env)
        public = {**base_env(), **artifact.env, **runtime_env}
        for secret_key in secrets:
            public.pop(secret_key, None)
        key = (name, version)
        with self._lock:
            self._reconcile()
            current = self._replicas.pop(key, {})
            # A retry of this very deployment replaces its own replicas, never the others it keeps.
            kept = {i: r for i, r in current.items() if r.state.tag != tag} if keep_previous else {}
            old = {i: r for i, r in current.items() if i not in kept}
            indices = [i for i in range(count + len(kept)) if i not in kept][:count]
            new: dict[int, Replica] = {}
            ports = self._ports_in_use() | {r.state.port for r in kept.values()}
            try:
                for index in indices:
                    port = free_port(ports)
                    ports.add(port)
                    env = {**public, "PORT": str(port), "JOB_HOST": "127.0.0.1"}
                    state = ReplicaState(
                        name=name,
                        version=version,
                        index=index,
                        pid=0,
                        port=port,
                        tag=tag,
                        command=list(artifact.command),
                        cwd=artifact.cwd,
                        env=env,
                        secret_env_keys=sorted(secrets),
                        deployment_timestamp=deployment_timestamp,
                        start_time=time.time(),
                        job_type_version=artifact.job_type_version,
                    )
                    rep = Replica(
                        state, self.layout.state_file(name, version, index), self.layout.log_file(name, version, index)
                    )
                    rep.process, rep.log_offset = spawn(state.command, state.cwd, {**env, **secrets}, rep.log_path)
                    state.pid = rep.process.pid
                    new[index] = rep
            except OSError as exc:
                stop_processes([Running(r.state.pid, r.state.command, r.process) for r in new.values()], 1.0)
                if current:
                    self._replicas[key] = current
                raise DeployFailed(
                    f"cannot start job {name} {version}: {exc} (command {artifact.command}, cwd {artifact.cwd})"
                ) from exc
            self.secrets.save_runtime_env(name, version, secrets)
            for rep in new.values():
                self._write(rep)
            live_files = {rep.path for rep in (*new.values(), *kept.values())}
            for path in state_dir.glob("replica-*.json"):
                if path not in live_files:
                    path.unlink(missing_ok=True)
            self._replicas[key] = {**kept, **new}
            views = [self._view(rep, time.monotonic()) for rep in new.values()]
        self._stop_in_background([Running(r.state.pid, r.state.command, r.process) for r in old.values()])
        self.ensure_watcher()
        return views

    def retire(self, name: str, version: str, keep_tag: str) -> int:
        """Stop (SIGTERM, letting in-flight calls finish) and forget the replicas of every deployment but
        `keep_tag`'s; returns how many. Waits until they are gone."""
        return self._remove_deployments(name, version, lambda tag: tag != keep_tag)

    def discard(self, name: str, version: str, tag: str) -> int:
        """Stop and forget the replicas of deployment `tag`, keeping the version's others; how many."""
        return self._remove_deployments(name, version, lambda other: other == tag)

    def _remove_deployments(self, name: str, version: str, chosen: Callable[[str], bool]) -> int:
        key = (name, version)
        self.layout.job_state_dir(name, version)  # refuses names that aren't safe path segments
        with self._lock:
            self._reconcile()
            reps = self._replicas.get(key, {})
            gone = [rep for rep in reps.values() if chosen(rep.state.tag)]
            for rep in gone:
                rep.path.unlink(missing_ok=True)
                del reps[rep.state.index]
            if not reps:
                self._replicas.pop(key, None)
        stop_processes([Running(r.state.pid, r.state.command, r.process) for r in gone], self.stop_grace)
        return len(gone)

    def remove(self, name: str, version: str) -> bool:
        """Stop the job's replicas and forget them (state files and secrets). Logs stay."""
        state_dir = self.layout.job_state_dir(name, version)
        with self._lock:
            self._reconcile()
            reps = self._replicas.pop((name, version), {})
            existed = bool(reps) or state_dir.is_dir()
            if state_dir.is_dir():
                for path in state_dir.iterdir():
                    path.unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    state_dir.rmdir()
                    state_dir.parent.rmdir()
            self.secrets.remove(name, version)
        stop_processes([Running(r.state.pid, r.state.command, r.process) for r in reps.values()], self.stop_grace)
        return existed

    def exists(self, name: str, version: str) -> bool:
        self.layout.job_state_dir(name, version)  # refuses names that aren't safe path segments
        with self._lock:
            self._reconcile()
            return (name, version) in self._replicas

    def replica_count(self, name: str, version: str) -> int:
        with self._lock:
            return len(self._replicas.get((name, version), {}))

    def replica_indices(self, name: str, version: str) -> list[int]:
        """The indices of the version's replicas (of every deployment while two run side by side)."""
        with self._lock:
            return sorted(self._replicas.get((name, version), {}))

    def snapshot(self, name: str, version: str) -> list[ReplicaView]:
        now = time.monotonic()
        with self._lock:
            if (name, version) not in self._replicas:
                self._reconcile()
            reps = sorted(self._replicas.get((name, version), {}).values(), key=lambda r: r.state.index)
            for rep in reps:
                self._observe(rep, now)
            return [self._view(rep, now) for rep in reps]

    def snapshot_all(self) -> dict[tuple[str, str], list[ReplicaView]]:
        now = time.monotonic()
        with self._lock:
            self._reconcile()
            result: dict[tuple[str, str], list[ReplicaView]] = {}
            for key, reps in sorted(self._replicas.items()):
                ordered = sorted(reps.values(), key=lambda r: r.state.index)
                for rep in ordered:
                    self._observe(rep, now)
                result[key] = [self._view(rep, now) for rep in ordered]
            return result

    def ensure_watcher(self) -> None:
        with self._lock:
            if self._closed or (self._thread is not None and self._thread.is_alive()):
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._watch, name="local-target-watcher", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop every replica (SIGTERM, then SIGKILL after the grace period), keeping their state files
        flagged `stopped_by_shutdown` so that the next start of the target runs them again."""
        self._stop_watcher()
        with self._lock:
            self._closed = True
            targets: list[Replica] = []
            for reps in self._replicas.values():
                for rep in reps.values():
                    # A process that doesn't supervise the target only stops what it started itself.
                    if rep.process is None and not self._owner:
                        continue
                    targets.append(rep)
                    rep.state.stopped_by_shutdown = True
                    with contextlib.suppress(OSError):
                        self._write(rep)
        stop_processes([Running(r.state.pid, r.state.command, r.process) for r in targets], self.stop_grace)
        self._join_stoppers()
        self._release_ownership()

    def release(self) -> None:
        """Stop supervising without stopping the jobs (as if this platform process died)."""
        self._stop_watcher()
        with self._lock:
            self._closed = True
        self._join_stoppers()
        self._release_ownership()

    # ----- watcher ----------------------------------------------------------------------------

    def _watch(self) -> None:
        while True:
            try:
                self._tick()
            except Exception:
                log.exception("local target watcher: tick failed")
            if self._stop.wait(self.tick):
                return

    def _tick(self) -> None:
        now = time.monotonic()
        rotate: list[Path] = []
        with self._lock:
            if not self._owner:
                self._try_own()
            if now - self._last_reconcile >= self.reconcile_interval:
                self._reconcile()
            reps = [rep for reps in self._replicas.values() for rep in reps.values()]
            for rep in reps:
                self._observe(rep, now)
            if self._owner:
                for rep in reps:
                    if rep.exited and rep.next_restart_at is not None and now >= rep.next_restart_at:
                        self._restart(rep)
                if now - self._last_rotate >= self.rotate_interval:
                    self._last_rotate = now
                    rotate = [rep.log_path for rep in reps]
        for path in rotate:
            try:
                rotate_if_needed(path, self.log_max_bytes, self.log_keep)
            except OSError as exc:
                log.warning("local target: rotating %s failed: %s", path, exc)

    def _observe(self, rep: Replica, now: float) -> None:
        """Notice (and reap) a replica's exit, and schedule its restart."""
        if rep.exited:
            return
        if rep.process is not None:
            code = rep.process.poll()
            if code is None:
                return
        elif process_matches(rep.state.pid, rep.state.command):
            return
        else:
            code = None
        rep.exited, rep.exit_code = True, code
        output = output_since(rep.log_path, rep.log_offset)
        if _BIND_FAILURE.search(output) and rep.bind_retries < _MAX_BIND_RETRIES:
            # Another process took the port between our check and the job's bind: retry at once elsewhere.
            rep.bind_retries += 1
            rep.new_port = True
            rep.next_restart_at = now
            return
        rep.crashes += 1
        uptime = time.time() - rep.state.start_time
        rep.consecutive_crashes = 1 if uptime >= self.healthy_uptime else rep.consecutive_crashes + 1
        delay = min(self.max_backoff, 2.0 ** (rep.consecutive_crashes - 1))
        rep.next_restart_at = now + delay
        lines = "\n".join(tail_lines(rep.log_path, ERROR_LOG_LINES))
        rep.error = describe_exit(code) + (f":\n{lines}" if lines else "")
        rep.state.last_exit_code = code
        rep.state.error = rep.error
        try:
            self._write(rep)
        except OSError as exc:
            log.warning("local target: recording the exit of %s failed: %s", rep.path, exc)

    def _restart(self, rep: Replica) -> None:
        current = read_state(rep.path)
        if current is None or current.pid != rep.state.pid:
            # Deleted or redeployed by another platform process: follow the files.
            rep.marker = None
            self._reconcile()
            return
        now = time.monotonic()
        state = rep.state
        port = state.port
        if rep.new_port or not port_is_free(port):
            port = free_port(self._ports_in_use())
        env = {**state.env, "PORT": str(port)}
        secrets = self.secrets.load_runtime_env(state.name, state.version)
        try:
            process, offset = spawn(state.command, state.cwd, {**env, **secrets}, rep.log_path)
        except OSError as exc:
            rep.consecutive_crashes += 1
            rep.next_restart_at = now + min(self.max_backoff, 2.0 ** (rep.consecutive_crashes - 1))
            rep.error = state.error = f"cannot restart: {exc}"
            self._write(rep)
            return
        if not rep.new_port and not state.stopped_by_shutdown:
            state.restart_count += 1
        if not rep.new_port:
            rep.bind_retries = 0
        log.info(
            "local target: started replica %s of job %s %s again (pid %s, port %s)",
            state.index,
            state.name,
            state.version,
            process.pid,
            port,
        )
        rep.process, rep.log_offset = process, offset
        rep.exited, rep.exit_code, rep.next_restart_at, rep.new_port = False, None, None, False
        state.pid, state.port, state.env = process.pid, port, env
        state.start_time = time.time()
        state.stopped_by_shutdown = False
        self._write(rep)

    # ----- files ------------------------------------------------------------------------------

    def _write(self, rep: Replica) -> None:
        write_state(rep.path, rep.state)
        st = rep.path.stat()
        rep.marker = (st.st_mtime_ns, st.st_size, st.st_ino)

    def _reconcile(self, startup: bool = False) -> None:
        """Bring memory in line with the state files: adopt new ones, follow changed ones, drop removed."""
        self._last_reconcile = time.monotonic()
        seen: set[tuple[str, str, int]] = set()
        now = time.monotonic()
        for name, version, index, path in self.layout.state_files():
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            marker = (st.st_mtime_ns, st.st_size, st.st_ino)
            current = self._replicas.get((name, version), {}).get(index)
            if current is not None and current.marker == marker:
                seen.add((name, version, index))
                continue
            state = read_state(path)
            if state is None:
                continue
            seen.add((name, version, index))
            if current is not None and current.state.pid == state.pid:
                current.state, current.marker = state, marker
                continue
            rep = Replica(state, path, self.layout.log_file(name, version, index), marker=marker)
            with contextlib.suppress(OSError):
                rep.log_offset = rep.log_path.stat().st_size
            if not process_matches(state.pid, state.command):
                rep.exited, rep.exit_code = True, state.last_exit_code
                rep.error = state.error or "process not running"
                rep.next_restart_at = now  # it should run: start it again at once
            elif startup:
                log.info("local target: adopted replica %s of job %s %s (pid %s)", index, name, version, state.pid)
            self._replicas.setdefault((name, version), {})[index] = rep
        for key in list(self._replicas):
            reps = self._replicas[key]
            for index in list(reps):
                if (key[0], key[1], index) not in seen:
                    del reps[index]
            if not reps:
                del self._replicas[key]

    # ----- helpers ----------------------------------------------------------------------------

    def _ports_in_use(self) -> set[int]:
        return {rep.state.port for reps in self._replicas.values() for rep in reps.values()}

    def _view(self, rep: Replica, now: float) -> ReplicaView:
        restart_in = None
        if rep.exited and rep.next_restart_at is not None and self._owner and not self._closed:
            restart_in = max(0.0, rep.next_restart_at - now)
        s = rep.state
        return ReplicaView(
            name=s.name,
            version=s.version,
            index=s.index,
            pid=s.pid,
            port=s.port,
            tag=s.tag,
            running=not rep.exited,
            exit_code=rep.exit_code,
            restart_in=restart_in,
            restart_count=s.restart_count,
            crashes=rep.crashes,
            retrying_bind=rep.exited and rep.new_port,
            error=rep.error,
            job_type_version=s.job_type_version,
            deployment_timestamp=s.deployment_timestamp,
            log_path=rep.log_path,
            start_time=s.start_time,
        )

    def _stop_in_background(self, processes: list[Running]) -> None:
        """Stop replaced replicas without holding up the deploy (a job may take its grace period)."""
        if not processes:
            return
        thread = threading.Thread(
            target=stop_processes, args=(processes, self.stop_grace), name="local-target-stop", daemon=True
        )
        thread.start()
        with self._lock:
            self._stoppers = [t for t in self._stoppers if t.is_alive()] + [thread]

    def _join_stoppers(self) -> None:
        with self._lock:
            stoppers = list(self._stoppers)
        for thread in stoppers:
            thread.join(self.stop_grace + 3)

    def _stop_watcher(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def _try_own(self) -> None:
        try:
            if self._lock_file is None:
                self.layout.root.mkdir(parents=True, exist_ok=True)
                self._lock_file = open(self.layout.lock_file, "ab")  # noqa: SIM115 (held for our lifetime)
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return
        if not self._owner:
            self._owner = True
            with contextlib.suppress(OSError):
                self._lock_file.truncate(0)
                self._lock_file.write(f"{os.getpid()}\n".encode())
                self._lock_file.flush()

    def _release_ownership(self) -> None:
        with self._lock:
            if self._lock_file is not None:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
                self._lock_file.close()
                self._lock_file = None
            self._owner = False
