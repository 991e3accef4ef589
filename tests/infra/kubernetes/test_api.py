"""The Kubernetes API client on the real cluster: streams another thread ends, and whose connections close.

A stream is ended by shutting its socket down, never by closing the reader's client from another
thread (a closed descriptor's number is reused by the next connection while the reader is still
inside `SSL_read` on it, and it then eats that connection's TLS records).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from trackside.infra.kubernetes.api import KubeApi, StreamCut
from trackside.infra.kubernetes.watch import PodWatcher

pytestmark = [pytest.mark.kubernetes, pytest.mark.timeout(300)]

# Far below the server's watch timeout (240 s): a watch that ends within it was ended by the cut.
JOIN_S = 60


def _watch_in_thread(api: KubeApi, cut: StreamCut) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []
    version = str(api.list("Pod")["metadata"]["resourceVersion"])

    def read() -> None:
        try:
            for event in api.watch("Pod", "", version, cut):
                assert event["type"] == "BOOKMARK"  # nothing happens in the test's namespace
            outcome.append("ended")
        except Exception as exc:  # the test reports what the reader saw
            outcome.append(exc)
        finally:
            api.release_thread()

    thread = threading.Thread(target=read)
    thread.start()
    return thread, outcome


def test_a_cut_watch_ends_quietly_while_the_server_would_keep_it_open(kube_api: KubeApi) -> None:
    cut = StreamCut()
    thread, outcome = _watch_in_thread(kube_api, cut)
    kube_api.items("Pod")  # the main thread's calls go on meanwhile, on a connection of their own
    cut.cut()
    thread.join(JOIN_S)
    assert not thread.is_alive()
    assert outcome == ["ended"]
    assert kube_api.items("Pod") == []


def test_a_cut_made_before_the_stream_opened_ends_it_as_it_opens(kube_api: KubeApi) -> None:
    cut = StreamCut()
    cut.cut()
    thread, outcome = _watch_in_thread(kube_api, cut)
    thread.join(JOIN_S)
    assert not thread.is_alive()
    assert outcome == ["ended"]


def test_stopping_the_pod_watcher_ends_its_thread_before_the_api_closes(kube_api: KubeApi) -> None:
    watcher = PodWatcher(kube_api, "trackside.io/test=watch")
    watcher.start()
    assert watcher.pods() == []
    watcher.stop(timeout=JOIN_S)
    assert not watcher.running
    kube_api.close()
    assert kube_api.items("Pod") == []  # a closed API opens a new connection when used again
