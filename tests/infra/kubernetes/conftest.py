"""Fixtures of the kubernetes target's tests. The cluster and namespace fixtures (`kube_cluster`,
`kube_namespace`) are shared with other packages' tests: tests/support/kubernetes.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.kubernetes import BINARIES, K8S_HOME, REPO_ROOT, SCRIPTS, KubeCluster

from trackside.infra.kubernetes.api import KubeApi

# Where they were before the fixtures moved to tests/support/kubernetes.py (tests import them from here).
__all__ = ["BINARIES", "K8S_HOME", "REPO_ROOT", "SCRIPTS", "KubeCluster", "kube_api"]


@pytest.fixture
def kube_api(kube_cluster: KubeCluster, kube_namespace: str) -> Iterator[KubeApi]:
    """The API of the test's namespace, its connections closed afterwards."""
    with kube_cluster.api(kube_namespace) as api:
        yield api
