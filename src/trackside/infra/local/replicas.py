"""The replica manager: starts, watches, restarts, adopts and stops a local job's processes.

One manager per local target. Its state files (`state.py`) say what should run; its memory only adds
what a file can't hold (our `Popen` handles, restart timers). A watcher thread, started on the first
deploy or when state files exist, reaps and restarts crashed replicas (`backoff.py`), rotates their
logs (`rotation.py`), and re-reads the state files every second (`reconcile.py`) so that several
platform processes sharing one data dir agree. Only the process holding the ownership lock
(`ownership.py`) restarts or rotates anything, so two platform processes never both restart the same
replica. How a replica's process is started lives in `spawning.py`; how it is kept from the
platform's files (its own directory outside the data dir, its sandbox) in `confinement.py`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from trackside.build.artifacts import ArtifactStore, LocalArtifact
from trackside.errors import DeployFailed, InvalidInput
from trackside.infra.local.backoff import RestartBackoff
from trackside.infra.local.confinement import Confinement
from trackside.infra.local.layout import LocalLayout
from trackside.infra.local.logs import output_since, tail_lines
from trackside.infra.local.ownership import OwnershipLock
from trackside.infra.local.processes import free_port, port_is_free, process_matches, stop_processes
from trackside.infra.local.reconcile import ReplicaTable, reconcile, record
from trackside.infra.local.replica import ERROR_LOG_LINES, Replica, ReplicaView, describe_exit
from trackside.infra.local.replica_dirs import ReplicaDirs
from trackside.infra.local.rotation import DEFAULT_KEEP, DEFAULT_MAX_BYTES, LogRotation
from trackside.infra.local.spawning import failed_to_bind, new_state, replica_env, split_env, start
from trackside.infra.local.state import read_state
from trackside.infra.secrets import SecretFileStore

log = logging.getLogger(__name__)


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
        confinement: Confinement | None = None,
    ) -> None:
        self.layout = LocalLayout(data_dir)
        self.artifacts = ArtifactStore(data_dir)
        if confinement is None:
            from trackside.config import Settings

            confinement = Confinement.from_settings(Settings(data_dir=data_dir))
        self.confinement = confinement
        self.confinement.announce()
        self.secrets = SecretFileStore(self.layout.secrets_root, self.layout.data_dir, "local")
        self.tick = tick
        self.reconcile_interval = reconcile_interval
        self.stop_grace = stop_grace
        self.backoff = RestartBackoff(max_backoff, healthy_uptime)
        self.rotation = LogRotation(rotate_interval, log_max_bytes, log_keep)
        self.ownership = OwnershipLock(self.layout.lock_file)
        self._lock = threading.RLock()
        self._replicas: ReplicaTable = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stoppers: list[threading.Thread] = []
        self._closed = False
        self._last_reconcile = 0.0
        with self._lock:
            self.ownership.try_acquire()
            self._reconcile(startup=True)
            # The supervising process watches from the start: another process may deploy through the
            # state files; others only watch what they start themselves.
            watch = self.ownership.held or bool(self._replicas)
        if watch:
            self.ensure_watcher()

    # ----- public API -------------------------------------------------------------------------

    @property
    def is_owner(self) -> bool:
        return self.ownership.held

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
        public, secrets = split_env(artifact, runtime_env, secret_env)
        key = (name, version)
        source = self._link_source(artifact, self.artifacts.build_dir(name, version, tag))
        with self._lock:
            self._reconcile()
            current = self._replicas.pop(key, {})
            # A retry of this very deployment replaces its own replicas, never the others it keeps.
            kept = {i: r for i, r in current.items() if r.state.tag != tag} if keep_previous else {}
            old = {i: r for i, r in current.items() if i not in kept}
            indices = [i for i in range(count + len(kept)) if i not in kept][:count]
            new: dict[int, Replica] = {}
            prepared: list[tuple[ReplicaDirs, int | None]] = []
            ports = self._ports_in_use() | {r.state.port for r in kept.values()}
            try:
                for index in indices:
                    port = free_port(ports)
                    ports.add(port)
                    dirs, uid = self.confinement.prepare(name, version, index, source)
                    prepared.append((dirs, uid))
                    env = {**replica_env(public, port), **dirs.env()}
                    state = new_state(
                        name,
                        version,
                        index,
                        tag,
                        artifact,
                        env,
                        list(secrets),
                        port,
                        deployment_timestamp,
                        str(dirs.root),
                        uid,
                    )
                    rep = Replica(
                        state, self.layout.state_file(name, version, index), self.layout.log_file(name, version, index)
                    )
                    self._start(rep, env, secrets)
                    new[index] = rep
            except BaseException as exc:
                stop_processes([r.running() for r in new.values()], 1.0)
                for dirs, uid in prepared:
                    self.confinement.release(str(dirs.root), uid)
                if current:
                    self._replicas[key] = current
                if isinstance(exc, OSError):
                    raise DeployFailed(
                        f"cannot start job {name} {version}: {exc} (command {artifact.command}, cwd {artifact.cwd})"
                    ) from exc
                raise
            self.secrets.save_runtime_env(name, version, secrets)
            for rep in new.values():
                record(rep)
            live_files = {rep.path for rep in (*new.values(), *kept.values())}
            for path in state_dir.glob("replica-*.json"):
                if path not in live_files:
                    path.unlink(missing_ok=True)
            self._replicas[key] = {**kept, **new}
            views = [self._view(rep, time.monotonic()) for rep in new.values()]
        self._stop_in_background(list(old.values()))
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
        self._stop_and_release(gone)
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
        self._stop_and_release(list(reps.values()))
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
                    if rep.process is None and not self.ownership.held:
                        continue
                    targets.append(rep)
                    rep.state.stopped_by_shutdown = True
                    with contextlib.suppress(OSError):
                        record(rep)
        stop_processes([r.running() for r in targets], self.stop_grace)
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
            if not self.ownership.held:
                self.ownership.try_acquire()
            if now - self._last_reconcile >= self.reconcile_interval:
                self._reconcile()
            reps = [rep for reps in self._replicas.values() for rep in reps.values()]
            for rep in reps:
                self._observe(rep, now)
            if self.ownership.held:
                for rep in reps:
                    if rep.exited and rep.next_restart_at is not None and now >= rep.next_restart_at:
                        self._restart(rep)
                if self.rotation.due(now):
                    rotate = [rep.log_path for rep in reps]
        self.rotation.rotate(rotate)

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
        if failed_to_bind(rep, output_since(rep.log_path, rep.log_offset)):
            # Another process took the port between our check and the job's bind: retry at once elsewhere.
            rep.bind_retries += 1
            rep.new_port = True
            rep.next_restart_at = now
            return
        rep.crashes += 1
        uptime = time.time() - rep.state.start_time
        rep.consecutive_crashes = self.backoff.crashes_in_a_row(rep.consecutive_crashes, uptime)
        rep.next_restart_at = now + self.backoff.delay(rep.consecutive_crashes)
        lines = "\n".join(tail_lines(rep.log_path, ERROR_LOG_LINES))
        rep.error = describe_exit(code) + (f":\n{lines}" if lines else "")
        rep.state.last_exit_code = code
        rep.state.error = rep.error
        try:
            record(rep)
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
        secrets = self.secrets.load_runtime_env(state.name, state.version)
        try:
            self._ensure_dirs(rep)
            env = {**state.env, "PORT": str(port)}
            self._start(rep, env, secrets)
        except (OSError, DeployFailed) as exc:
            rep.consecutive_crashes += 1
            rep.next_restart_at = now + self.backoff.delay(rep.consecutive_crashes)
            rep.error = state.error = f"cannot restart: {exc}"
            record(rep)
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
            state.pid,
            port,
        )
        rep.exited, rep.exit_code, rep.next_restart_at, rep.new_port = False, None, None, False
        state.port, state.env = port, env
        state.start_time = time.time()
        state.stopped_by_shutdown = False
        record(rep)

    # ----- replica processes and directories ---------------------------------------------------

    def _start(self, rep: Replica, env: dict[str, str], secrets: dict[str, str]) -> None:
        state = rep.state
        build_dir = self.artifacts.build_dir(state.name, state.version, state.tag)
        command = self.confinement.command(state, build_dir)
        start(rep, command, str(ReplicaDirs(Path(state.home)).work), env, secrets)

    def _ensure_dirs(self, rep: Replica) -> None:
        """Give a replica whose directory is gone (or that predates them) a new one before it starts."""
        state = rep.state
        has_dirs = bool(state.home) and ReplicaDirs(Path(state.home)).exists()
        if has_dirs and (state.uid is not None or self.confinement.uids is None):
            return
        old_home, old_uid = state.home, state.uid
        build_dir = self.artifacts.build_dir(state.name, state.version, state.tag)
        source = self._link_source_path(Path(state.cwd), build_dir)
        dirs, uid = self.confinement.prepare(state.name, state.version, state.index, source)
        state.home, state.uid = str(dirs.root), uid
        state.env.update(dirs.env())
        self.confinement.release(old_home, old_uid)

    def _link_source(self, artifact: LocalArtifact, build_dir: Path) -> Path | None:
        return self._link_source_path(Path(artifact.cwd), build_dir)

    @staticmethod
    def _link_source_path(cwd: Path, build_dir: Path) -> Path | None:
        """The build's working directory when it lies in the build (its entries are the job's files)."""
        resolved, build = cwd.resolve(), build_dir.resolve()
        return resolved if resolved == build or build in resolved.parents else None

    def _stop_and_release(self, reps: list[Replica]) -> None:
        """Stop the replicas' processes, then delete their directories and give their uids back."""
        stop_processes([r.running() for r in reps], self.stop_grace)
        for rep in reps:
            self.confinement.release(rep.state.home, rep.state.uid)

    # ----- helpers ----------------------------------------------------------------------------

    def _reconcile(self, startup: bool = False) -> None:
        self._last_reconcile = time.monotonic()
        reconcile(self._replicas, self.layout, self._last_reconcile, startup)

    def _ports_in_use(self) -> set[int]:
        return {rep.state.port for reps in self._replicas.values() for rep in reps.values()}

    def _view(self, rep: Replica, now: float) -> ReplicaView:
        return ReplicaView.of(rep, now, restarts_scheduled=self.ownership.held and not self._closed)

    def _stop_in_background(self, reps: list[Replica]) -> None:
        """Stop replaced replicas without holding up the deploy (a job may take its grace period)."""
        if not reps:
            return
        thread = threading.Thread(target=self._stop_and_release, args=(reps,), name="local-target-stop", daemon=True)
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

    def _release_ownership(self) -> None:
        with self._lock:
            self.ownership.release()
