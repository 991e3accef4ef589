"""The target's view of its pods, kept current by list + watch (an informer).

One background thread lists the target's pods (by the platform's and the target's labels), then
watches from the list's resourceVersion. When the server closes the watch (its timeout, a restart, a
`410 Gone` for a too old version, a broken connection) the thread lists again: a closed watch says
nothing about what changed meanwhile, so it is never taken as "nothing changed". Until the first list
succeeded, and after a failed one, `pods()` lists directly instead of answering from a stale cache.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from trackside.infra.kubernetes.api import KubeApi, KubeError, StreamCut

log = logging.getLogger(__name__)

RETRY_DELAY_S = 2.0
MIN_WATCH_S = 0.5


class PodWatcher:
    def __init__(self, api: KubeApi, selector: str) -> None:
        self.api = api
        self.selector = selector
        self._pods: dict[str, dict[str, Any]] = {}
        self._synced = False
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._cut = StreamCut()  # stop() ends the watch stream the thread is reading
        self._thread: threading.Thread | None = None
        self.lists = 0  # how many times it listed (tests check a closed watch re-lists)

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="kubernetes-pod-watch", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """End the thread and wait for it (a list in flight may take up to the API's request timeout)."""
        self._stop.set()
        self._cut.cut()
        with self._changed:
            self._changed.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def synced(self) -> bool:
        return self._synced

    def pods(self) -> list[dict[str, Any]]:
        """The target's pods: from the watch when it is current, else listed now."""
        self.start()
        with self._lock:
            if self._synced:
                return list(self._pods.values())
        return self.api.items("Pod", self.selector)

    def wait_for_change(self, timeout: float) -> None:
        """Return when a watch event arrived, or after `timeout` seconds."""
        with self._changed:
            self._changed.wait(timeout)

    def _run(self) -> None:
        try:
            self._list_and_watch()
        finally:
            self.api.release_thread()

    def _list_and_watch(self) -> None:
        while not self._stop.is_set():
            try:
                listed = self.api.list("Pod", self.selector)
                version = str((listed.get("metadata") or {}).get("resourceVersion") or "")
                with self._changed:
                    self._pods = {p["metadata"]["uid"]: p for p in listed.get("items") or []}
                    self._synced = True
                    self.lists += 1
                    self._changed.notify_all()
                began = time.monotonic()
                self._watch(version)  # returns when the server ends the watch: list again at once
                if time.monotonic() - began < MIN_WATCH_S:  # but never in a tight loop
                    self._stop.wait(MIN_WATCH_S)
                continue
            except KubeError as exc:
                log.debug("pod watch: %s; listing again", exc)
            except Exception:
                log.exception("pod watch failed; listing again")
            with self._changed:  # until a list succeeds again, pods() asks the API server itself
                self._synced = False
            self._stop.wait(RETRY_DELAY_S)

    def _watch(self, version: str) -> None:
        """Apply watch events until the stream ends (then the caller lists again)."""
        for event in self.api.watch("Pod", self.selector, version, self._cut):
            if self._stop.is_set():
                return
            kind = event.get("type")
            obj = event.get("object") or {}
            if kind == "ERROR":  # e.g. 410 Gone: our version is too old; list again
                log.debug("pod watch error: %s", obj.get("message"))
                return
            if kind == "BOOKMARK":
                continue
            uid = (obj.get("metadata") or {}).get("uid")
            if not uid:
                continue
            with self._changed:
                if kind == "DELETED":
                    self._pods.pop(uid, None)
                else:
                    self._pods[uid] = obj
                self._changed.notify_all()


def wait_until(predicate: Any, watcher: PodWatcher, timeout: float, step: float = 0.5) -> bool:
    """Poll `predicate()` on every pod change (or every `step` s) until it is true or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        watcher.wait_for_change(min(step, left))
