"""The real single-node Kubernetes of ../shared/k8s for tests of any package (the kubernetes target,
the pipelines' kubernetes executor), registered as fixtures by the root conftest.

`kube_cluster` (session) uses the node when one already runs (`.ci/run` starts it before the tests),
else starts it with `start_node.sh` and stops it with `stop_node.sh` at the end of the session. Several
test processes (xdist) share one node: each holds a shared lock on it while its session lasts, and
the process that started it waits for the others before stopping it (two lock files, below). Without
the built binaries the tests are skipped with the reason (failed under TRACKSIDE_REQUIRE_SERVICES=1).

`kube_namespace` is a fresh namespace per test, removed afterwards (its objects with it: Jobs with
foreground propagation first, so their pods do not hold the namespace's deletion up).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests.support.services import missing, require_docker
from trackside.infra.kubernetes.api import KubeApi, KubeError
from trackside.infra.kubernetes.cluster import from_kubeconfig

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(os.environ.get("TRACKSIDE_K8S_SCRIPTS") or REPO_ROOT.parent / "shared" / "k8s")
K8S_HOME = Path(os.environ.get("TRACKSIDE_K8S_HOME") or Path.home() / ".cache" / "trackside" / "k8s-1.20.2")
BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy")


@dataclass
class KubeCluster:
    kubeconfig: Path

    def api(self, namespace: str = "default") -> KubeApi:
        config = from_kubeconfig(self.kubeconfig)
        config.namespace = namespace
        return KubeApi(config)

    def answers(self) -> bool:
        try:
            with self.api() as api:
                api.request("GET", "/readyz")
        except (KubeError, OSError, ValueError):
            return False
        return True


def _kubeconfig() -> Path:
    return K8S_HOME / "run" / "kubeconfig"


def _flock(lock: IO[str], mode: int, seconds: float) -> bool:
    """Take `lock` in `mode` within `seconds`; False when it stayed refused."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(lock, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    missing_bins = [b for b in BINARIES if not os.access(K8S_HOME / "bin" / b, os.X_OK)]
    if missing_bins:
        missing(
            "Kubernetes",
            f"{', '.join(missing_bins)} not built in {K8S_HOME / 'bin'} (run ../shared/k8s/install.sh once)",
        )
    require_docker()
    cluster = KubeCluster(_kubeconfig())
    K8S_HOME.mkdir(parents=True, exist_ok=True)
    # Two locks: `start` serialises deciding to start the node and stopping it; every session holds
    # `users` shared while it runs tests, and the one that started the node takes it exclusively at
    # the end, so it stops the node only when no other session still uses it. A session never waits
    # for another one's tests to end before its own can start.
    with (
        open(K8S_HOME / ".trackside-tests-start.lock", "a+") as start,
        open(K8S_HOME / ".trackside-tests.lock", "a+") as users,
    ):
        with _locked(start):
            started = False
            if not (cluster.kubeconfig.is_file() and cluster.answers()):
                result = subprocess.run(
                    ["bash", str(SCRIPTS / "start_node.sh")], capture_output=True, text=True, timeout=300, check=False
                )
                if result.returncode != 0 or not cluster.answers():
                    subprocess.run(
                        ["bash", str(SCRIPTS / "stop_node.sh")], capture_output=True, timeout=120, check=False
                    )
                    missing("Kubernetes", f"start_node.sh failed: {(result.stdout + result.stderr)[-2000:]}")
                started = True
            # Refused for 15 s only when something outside the tests holds `users` for good (a node
            # started by a script that held it: its processes inherit the lock): a node not started
            # by a session, which no session stops, so it is used without the lock.
            shared = started or _flock(users, fcntl.LOCK_SH, 15)
            if started:
                fcntl.flock(users, fcntl.LOCK_SH)
        try:
            yield cluster
        finally:
            if started:
                with _locked(start):  # no session starts using the node while it stops
                    fcntl.flock(users, fcntl.LOCK_EX)  # wait for the other sessions to finish
                    subprocess.run(
                        ["bash", str(SCRIPTS / "stop_node.sh")], capture_output=True, timeout=180, check=False
                    )
            if shared:
                fcntl.flock(users, fcntl.LOCK_UN)


@contextmanager
def _locked(lock_file: IO[str]) -> Iterator[None]:
    fcntl.flock(lock_file, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(lock_file, fcntl.LOCK_UN)


@contextmanager
def fresh_namespace(cluster: KubeCluster) -> Iterator[str]:
    """A new namespace while the block runs; deleted afterwards (the cluster removes what is left in it)."""
    name = f"ts-test-{uuid.uuid4().hex[:8]}"
    with cluster.api() as api, cluster.api(name) as namespaced:
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        try:
            yield name
        finally:
            for obj in namespaced.items("Job"):
                namespaced.delete("Job", obj["metadata"]["name"], "Foreground", grace_seconds=0)
            for kind in ("Deployment", "Service", "Secret"):
                for obj in namespaced.items(kind):
                    namespaced.delete(kind, obj["metadata"]["name"], grace_seconds=0)
            api.delete("Namespace", name)


@pytest.fixture
def kube_namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    """A fresh namespace per test; deleted afterwards (the cluster removes what is left in it)."""
    with fresh_namespace(kube_cluster) as name:
        yield name
