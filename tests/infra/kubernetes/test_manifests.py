"""deploy/kubernetes/ (Trackside on a cluster) is valid for current Kubernetes (1.29 and later, strict).

Every object of the base is validated as written; the single-node overlay as kustomize renders it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from tests.support.services import missing

REPO_ROOT = Path(__file__).resolve().parents[3]
DEPLOY = REPO_ROOT / "deploy" / "kubernetes"
VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]


def base_objects() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "base" / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        objects += [doc for doc in yaml.safe_load_all((DEPLOY / "base" / resource).read_text()) if doc]
    return objects


@pytest.mark.parametrize("version", VERSIONS)
def test_every_base_object_passes_strict_validation(version: str) -> None:
    objects = base_objects()
    kinds = {obj["kind"] for obj in objects}
    assert {"Deployment", "StatefulSet", "Service", "Role", "RoleBinding", "NetworkPolicy", "Secret"} <= kinds
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_base_runs_two_lifecycles_and_two_gateways_with_probes_and_requests() -> None:
    deployments = {obj["metadata"]["name"]: obj for obj in base_objects() if obj["kind"] == "Deployment"}
    assert deployments["trackside-lifecycle"]["spec"]["replicas"] == 2
    assert deployments["trackside-gateway"]["spec"]["replicas"] == 2
    for deployment in deployments.values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert "requests" in container["resources"], deployment["metadata"]["name"]
    for name in ("trackside-lifecycle", "trackside-gateway", "trackside-dashboard"):
        container = deployments[name]["spec"]["template"]["spec"]["containers"][0]
        assert "readinessProbe" in container and "livenessProbe" in container, name


@pytest.mark.parametrize("overlay", ["single-node"])
def test_overlay_renders_to_valid_objects(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        missing("kubectl", "no kubectl on PATH to render the kustomize overlay (../shared/k8s/install.sh installs it)")
    assert kubectl is not None
    result = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    objects = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert {obj["kind"] for obj in objects} >= {"Deployment", "Service", "Role", "ConfigMap"}
    for obj in objects:
        for version in VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
