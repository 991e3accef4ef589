"""Live log sessions of a `kubernetes` target: one followed log stream per pod, lines passed on as they come.

A session follows every pod of the job version (all replicas, `[replica-i]` prefixes when several), as
`kubectl logs -f` does, through the API server. Each stream has an HTTP client of its own, so closing
the session cuts it at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

import httpx

from trackside.infra.base import LogsStreamer, session_job
from trackside.infra.kubernetes.api import KubeError
from trackside.infra.kubernetes.naming import CONTAINER
from trackside.infra.kubernetes.workloads import JobWorkloads

log = logging.getLogger(__name__)


class KubernetesLogsStreamer(LogsStreamer):
    def __init__(self, workloads: JobWorkloads) -> None:
        self.workloads = workloads
        self._sessions: dict[str, list[tuple[httpx.Client, threading.Thread]]] = {}
        self._lock = threading.Lock()

    def create_session(
        self,
        session_id: str,
        resource_properties: dict[str, str],
        on_next_line: Callable[[str, str], None],
    ) -> None:
        name, version, tail = session_job(resource_properties)
        pods = [p for p in self.workloads.pods_now(name, version) if not p.deleting]
        self.close_session(session_id)
        streams: list[tuple[httpx.Client, threading.Thread]] = []
        for pod in pods:
            client = self.workloads.api.new_client()
            prefix = f"[replica-{pod.index}] " if len(pods) > 1 else ""
            pump = threading.Thread(
                target=self._pump,
                args=(session_id, client, pod.name, tail, prefix, on_next_line),
                name=f"kubernetes-logs-{session_id}",
                daemon=True,
            )
            pump.start()
            streams.append((client, pump))
        with self._lock:
            self._sessions[session_id] = streams

    def _pump(
        self,
        session_id: str,
        client: httpx.Client,
        pod: str,
        tail: int,
        prefix: str,
        on_next_line: Callable[[str, str], None],
    ) -> None:
        try:
            for line in self.workloads.api.log_lines(pod, CONTAINER, tail, follow=True, client=client):
                if client.is_closed:  # the session was closed while the stream waited for this line
                    return
                on_next_line(session_id, prefix + line)
        except KubeError as exc:
            if not client.is_closed:
                log.info("logs session %s: %s", session_id, exc)
        except Exception:
            if not client.is_closed:
                log.exception("logs session %s failed", session_id)

    def close_session(self, session_id: str) -> None:
        with self._lock:
            streams = self._sessions.pop(session_id, [])
        for client, pump in streams:
            with contextlib.suppress(Exception):
                client.close()
            pump.join(timeout=5)

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions)
        for session_id in sessions:
            self.close_session(session_id)
