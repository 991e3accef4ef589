"""Live log sessions of a `kubernetes` target: one followed log stream per pod, lines passed on as they come.

A session follows every pod of the job version (all replicas, `[replica-i]` prefixes when several), as
`kubectl logs -f` does, through the API server. Each stream is read by a thread of its own; closing
the session cuts the streams (`StreamCut`) and waits for those threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from trackside.infra.base import LogsStreamer, session_job
from trackside.infra.kubernetes.api import KubeError, StreamCut
from trackside.infra.kubernetes.naming import CONTAINER
from trackside.infra.kubernetes.workloads import JobWorkloads

log = logging.getLogger(__name__)


class KubernetesLogsStreamer(LogsStreamer):
    def __init__(self, workloads: JobWorkloads) -> None:
        self.workloads = workloads
        self._sessions: dict[str, list[tuple[StreamCut, threading.Thread]]] = {}
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
        streams: list[tuple[StreamCut, threading.Thread]] = []
        for pod in pods:
            cut = StreamCut()
            prefix = f"[replica-{pod.index}] " if len(pods) > 1 else ""
            pump = threading.Thread(
                target=self._pump,
                args=(session_id, cut, pod.name, tail, prefix, on_next_line),
                name=f"kubernetes-logs-{session_id}",
                daemon=True,
            )
            pump.start()
            streams.append((cut, pump))
        with self._lock:
            self._sessions[session_id] = streams

    def _pump(
        self,
        session_id: str,
        cut: StreamCut,
        pod: str,
        tail: int,
        prefix: str,
        on_next_line: Callable[[str, str], None],
    ) -> None:
        api = self.workloads.api
        try:
            for line in api.log_lines(pod, CONTAINER, tail, follow=True, cut=cut):
                if cut.is_cut:  # the session was closed while the stream waited for this line
                    return
                on_next_line(session_id, prefix + line)
        except KubeError as exc:
            if not cut.is_cut:
                log.info("logs session %s: %s", session_id, exc)
        except Exception:
            if not cut.is_cut:
                log.exception("logs session %s failed", session_id)
        finally:
            api.release_thread()

    def close_session(self, session_id: str) -> None:
        with self._lock:
            streams = self._sessions.pop(session_id, [])
        for cut, _ in streams:
            cut.cut()
        for _, pump in streams:
            pump.join(timeout=5)

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions)
        for session_id in sessions:
            self.close_session(session_id)
