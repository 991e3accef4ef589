"""Fixtures of the kubernetes target's tests. The cluster and namespace fixtures (`kube_cluster`,
`kube_namespace`) are shared with other packages' tests: tests/support/kubernetes.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.support.kubernetes import KubeCluster

from trackside.infra.kubernetes.api import KubeApi


@pytest.fixture
def kube_api(kube_cluster: KubeCluster, kube_namespace: str) -> Iterator[KubeApi]:
    """The API of the test's namespace, its connections closed afterwards."""
    with kube_cluster.api(kube_namespace) as api:
        yield api
