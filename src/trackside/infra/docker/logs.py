"""Live log sessions of a Docker target: one `docker logs --follow` per replica, lines passed on as they come."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable

from trackside.infra.base import LogsStreamer, session_job
from trackside.infra.docker.containers import JobContainers

log = logging.getLogger(__name__)


class DockerLogsStreamer(LogsStreamer):
    def __init__(self, containers: JobContainers) -> None:
        self.containers = containers
        self._sessions: dict[str, list[tuple[subprocess.Popen[str], threading.Thread]]] = {}
        self._lock = threading.Lock()

    def create_session(
        self,
        session_id: str,
        resource_properties: dict[str, str],
        on_next_line: Callable[[str, str], None],
    ) -> None:
        name, version, tail = session_job(resource_properties)
        replicas = self.containers.find(name, version)
        self.close_session(session_id)
        processes: list[tuple[subprocess.Popen[str], threading.Thread]] = []
        for replica in replicas:
            args = ["logs", "--follow", "--tail", str(tail) if tail > 0 else "all", replica.container]
            process = subprocess.Popen(
                self.containers.engine.command(args),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                bufsize=1,
            )
            prefix = f"[replica-{replica.index}] " if len(replicas) > 1 else ""
            pump = threading.Thread(
                target=self._pump,
                args=(session_id, process, prefix, on_next_line),
                name=f"docker-logs-{session_id}",
                daemon=True,
            )
            pump.start()
            processes.append((process, pump))
        with self._lock:
            self._sessions[session_id] = processes

    @staticmethod
    def _pump(
        session_id: str, process: subprocess.Popen[str], prefix: str, on_next_line: Callable[[str, str], None]
    ) -> None:
        assert process.stdout is not None
        try:
            with process.stdout:  # closed by the reader, at the end of the output
                for line in process.stdout:
                    on_next_line(session_id, prefix + line.rstrip("\n"))
        except Exception:
            log.exception("logs session %s failed", session_id)

    def close_session(self, session_id: str) -> None:
        with self._lock:
            processes = self._sessions.pop(session_id, [])
        for process, pump in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            pump.join(timeout=5)  # it reads to the end of the output and closes it

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions)
        for session_id in sessions:
            self.close_session(session_id)
