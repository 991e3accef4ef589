"""Fixtures for the kubernetes target's tests: the real single-node cluster of ../shared/k8s.

`kube_cluster` (session) uses the node when one already runs (`.ci/run` starts it before the tests),
else starts it with `start_node.sh` and stops it with `stop_node.sh` at the end of the session. Several
test processes (xdist) share one node: each holds a shared lock on it while its session lasts, and
the process that started it waits for the others before stopping it. Without the built binaries the
tests are skipped with the reason (failed under TRACKSIDE_REQUIRE_SERVICES=1).

`kube_namespace` is a fresh namespace per test, removed afterwards (its objects with it).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.services import missing, require_docker

from trackside.infra.kubernetes.api import KubeApi, KubeError
from trackside.infra.kubernetes.cluster import from_kubeconfig

REPO_ROOT = Path(__file__).resolve().parents[3]
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
    with open(K8S_HOME / ".trackside-tests.lock", "a+") as lock:
        started = False
        # A node that runs is joined with the shared lock at once: waiting for the exclusive one first
        # would wait for every other session's end while sessions keep coming (flock favours none).
        # It is checked again once held, since its starter may have stopped it just before.
        fcntl.flock(lock, fcntl.LOCK_SH)
        joined = cluster.kubeconfig.is_file() and cluster.answers()
        if not joined:
            fcntl.flock(lock, fcntl.LOCK_UN)
            fcntl.flock(lock, fcntl.LOCK_EX)  # one process at a time decides whether to start it
        if not joined and not (cluster.kubeconfig.is_file() and cluster.answers()):
            result = subprocess.run(
                ["bash", str(SCRIPTS / "start_node.sh")], capture_output=True, text=True, timeout=300, check=False
            )
            if result.returncode != 0 or not cluster.answers():
                subprocess.run(["bash", str(SCRIPTS / "stop_node.sh")], capture_output=True, timeout=120, check=False)
                missing("Kubernetes", f"start_node.sh failed: {(result.stdout + result.stderr)[-2000:]}")
            started = True
        fcntl.flock(lock, fcntl.LOCK_SH)  # every user holds a shared lock while it runs tests
        try:
            yield cluster
        finally:
            if started:
                fcntl.flock(lock, fcntl.LOCK_EX)  # wait for the other test processes to finish
                subprocess.run(["bash", str(SCRIPTS / "stop_node.sh")], capture_output=True, timeout=180, check=False)
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def kube_namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    """A fresh namespace; deleted afterwards (the cluster removes what is left in it)."""
    name = f"ts-test-{uuid.uuid4().hex[:8]}"
    with kube_cluster.api() as api, kube_cluster.api(name) as namespaced:
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        try:
            yield name
        finally:
            for kind in ("Deployment", "Service", "Secret"):
                for obj in namespaced.items(kind):
                    namespaced.delete(kind, obj["metadata"]["name"], grace_seconds=0)
            api.delete("Namespace", name)


@pytest.fixture
def kube_api(kube_cluster: KubeCluster, kube_namespace: str) -> Iterator[KubeApi]:
    """The API of the test's namespace, its connections closed afterwards."""
    with kube_cluster.api(kube_namespace) as api:
        yield api
