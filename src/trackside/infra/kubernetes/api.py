"""A small client of the Kubernetes API server over HTTP (httpx): the calls the target makes, no more.

Objects are plain dicts (what the API server sends and takes). Errors become `KubeError` with the API
server's own message (its `Status` object), so callers can tell "not found" or "already exists" from
a refusal and show the reason as it is. `watch` yields the events of a watch stream until the server
closes it; the caller re-lists then (a closed watch says nothing about what changed meanwhile).

Another thread ends a stream through its `StreamCut`, never by closing the reader's client: a closed
socket's descriptor number is reused by the next connection while the reader may still be inside
`SSL_read` on it, and the reader then eats that connection's TLS records (seen as "bad record mac").
"""

from __future__ import annotations

import builtins
import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

from trackside.errors import TracksideError
from trackside.infra.kubernetes.cluster import ClusterConfig

REQUEST_TIMEOUT = 30.0
WATCH_TIMEOUT_S = 240  # the server ends each watch after this; we re-list and watch again

# Where each kind lives: (API path prefix, plural).
KINDS: dict[str, tuple[str, str]] = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "ReplicaSet": ("/apis/apps/v1", "replicasets"),
    "Pod": ("/api/v1", "pods"),
    "Service": ("/api/v1", "services"),
    "Secret": ("/api/v1", "secrets"),
    "Event": ("/api/v1", "events"),
    "Namespace": ("/api/v1", "namespaces"),
    "Job": ("/apis/batch/v1", "jobs"),  # the kubernetes pipeline executor's steps
}


class KubeError(TracksideError):
    """The API server refused a call, or could not be reached (`status` None)."""

    def __init__(self, message: str, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


class StreamCut:
    """Lets one thread end a stream that another thread reads (a watch, a followed log).

    `cut()` shuts the stream's socket down, which wakes the reader with an end of stream, but leaves
    closing it to the reader's thread (see the module docstring). A cut before the stream opened ends
    it as soon as it opens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._cut = False

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sock = self._socket
        if sock is not None:
            _shut_down(sock)

    def attach(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        with self._lock:
            self._socket = sock
            cut = self._cut
        if cut and sock is not None:
            _shut_down(sock)

    def detach(self) -> None:
        with self._lock:
            self._socket = None


def _shut_down(sock: socket.socket) -> None:
    # socket.socket's own shutdown, not SSLSocket's: that one drops the TLS object under the reader.
    with contextlib.suppress(OSError):  # already closed or never connected: the reader ends either way
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class KubeApi:
    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        self._local = threading.local()  # one client per thread: a watch holds its connection for minutes
        self._clients: list[tuple[threading.Thread, httpx.Client]] = []  # so close() ends every thread's
        self._clients_lock = threading.Lock()

    @property
    def namespace(self) -> str:
        return self.config.namespace

    def _client(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = self._new_client()
            self._local.client = client
            with self._clients_lock:
                self._clients.append((threading.current_thread(), client))
        return client

    def _new_client(self) -> httpx.Client:
        headers = {"Accept": "application/json"}
        token = self.config.bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(
            base_url=self.config.server, headers=headers, verify=self.config.ssl_context(), timeout=REQUEST_TIMEOUT
        )

    def close(self) -> None:
        """Close the connections of this thread and of every thread that used this API and ended.

        A thread still running keeps its client (closing it under its reader is unsafe, see the module
        docstring): end its streams with their `StreamCut` and join it first."""
        me = threading.current_thread()
        self._close_clients(lambda thread: thread is me or not thread.is_alive())

    def release_thread(self) -> None:
        """Close the calling thread's connections; a thread that streams calls this before it ends."""
        me = threading.current_thread()
        self._close_clients(lambda thread: thread is me)

    def _close_clients(self, of: Callable[[threading.Thread], bool]) -> None:
        with self._clients_lock:
            closing = [client for thread, client in self._clients if of(thread)]
            self._clients = [(thread, client) for thread, client in self._clients if not of(thread)]
        for client in closing:
            client.close()
        self._local.client = None

    def __enter__(self) -> KubeApi:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- paths ------------------------------------------------------------------------------------

    def path(self, kind: str, name: str | None = None, namespace: str | None = None) -> str:
        prefix, plural = KINDS[kind]
        if kind == "Namespace":
            base = f"{prefix}/{plural}"
        else:
            base = f"{prefix}/namespaces/{quote(namespace or self.namespace, safe='')}/{plural}"
        return f"{base}/{quote(name, safe='')}" if name else base

    # -- calls ------------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._client().request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise KubeError(f"Kubernetes API {self.config.server} is not reachable: {exc}") from None
        if response.status_code >= 400:
            raise _error(response, method, path)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            return response.text

    def get(self, kind: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", self.path(kind, name))
        return result

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            return self.get(kind, name)
        except KubeError as exc:
            if exc.not_found:
                return None
            raise

    def list(self, kind: str, selector: str = "", field_selector: str = "") -> dict[str, Any]:
        """The list object (`items` and `metadata.resourceVersion`)."""
        params = {k: v for k, v in (("labelSelector", selector), ("fieldSelector", field_selector)) if v}
        result: dict[str, Any] = self.request("GET", self.path(kind), params=params)
        return result

    def items(self, kind: str, selector: str = "", field_selector: str = "") -> builtins.list[dict[str, Any]]:
        return list(self.list(kind, selector, field_selector).get("items") or [])

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", self.path(obj["kind"]), json=obj)
        return result

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PUT", self.path(obj["kind"], obj["metadata"]["name"]), json=obj)
        return result

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create `obj`, or replace the one of that name (keeping its resourceVersion)."""
        try:
            return self.create(obj)
        except KubeError as exc:
            if not exc.conflict:
                raise
        current = self.get(obj["kind"], obj["metadata"]["name"])
        updated = json.loads(json.dumps(obj))
        updated["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        if obj["kind"] == "Service":  # the cluster IP is immutable once given
            updated["spec"]["clusterIP"] = current.get("spec", {}).get("clusterIP")
        return self.replace(updated)

    def delete(self, kind: str, name: str, propagation: str = "Background", grace_seconds: int | None = None) -> bool:
        """Delete one object; False when it was not there."""
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        try:
            self.request("DELETE", self.path(kind, name), json=body)
        except KubeError as exc:
            if exc.not_found:
                return False
            raise
        return True

    def watch(
        self, kind: str, selector: str, resource_version: str, cut: StreamCut | None = None
    ) -> Iterator[dict[str, Any]]:
        """Events (`{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}`) until the stream
        ends, or until another thread calls `cut.cut()`."""
        params = {
            "watch": "1",
            "labelSelector": selector,
            "resourceVersion": resource_version,
            "timeoutSeconds": str(WATCH_TIMEOUT_S),
            "allowWatchBookmarks": "true",
        }
        timeout = httpx.Timeout(REQUEST_TIMEOUT, read=WATCH_TIMEOUT_S + 30)
        try:
            with self._client().stream("GET", self.path(kind), params=params, timeout=timeout) as response:
                if cut is not None:
                    cut.attach(response)
                if response.status_code >= 400:
                    response.read()
                    raise _error(response, "WATCH", self.path(kind))
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as exc:
            if cut is not None and cut.is_cut:
                return

            raise KubeError(f"watch of {kind} on {self.config.server} broke: {exc}") from None

    def log_lines(
        self,
        pod: str,
        container: str,
        tail: int,
        follow: bool = False,
        cut: StreamCut | None = None,
        previous: bool = False,
    ) -> Iterator[str]:
        """A pod container's output, line by line (following it while it runs when `follow`), until it
        ends or another thread calls `cut.cut()`."""
        params: dict[str, str] = {"container": container}
        if tail > 0:
            params["tailLines"] = str(tail)
        if follow:
            params["follow"] = "true"
        if previous:
            params["previous"] = "true"
        timeout = httpx.Timeout(REQUEST_TIMEOUT, read=None if follow else REQUEST_TIMEOUT)
        path = f"{self.path('Pod', pod)}/log"
        try:
            with self._client().stream("GET", path, params=params, timeout=timeout) as response:
                if cut is not None:
                    cut.attach(response)
                if response.status_code >= 400:
                    response.read()
                    raise _error(response, "GET", path)
                yield from response.iter_lines()
        except httpx.HTTPError as exc:
            if cut is not None and cut.is_cut:
                return
            raise KubeError(f"logs of pod {pod} on {self.config.server}: {exc}") from None
        finally:
            if cut is not None:
                cut.detach()


def _error(response: httpx.Response, method: str, path: str) -> KubeError:
    reason, message = "", response.text.strip()
    try:
        status = response.json()
        if isinstance(status, dict):
            message = str(status.get("message") or message)
            reason = str(status.get("reason") or "")
    except ValueError:
        pass
    return KubeError(
        f"Kubernetes API refused {method} {path} (HTTP {response.status_code}): {message[:500]}",
        response.status_code,
        reason,
    )
