"""Trackside installed on the real single-node cluster from deploy/kubernetes, as docs/kubernetes.md says.

The platform image is built by scripts/build-platform-image (our base image, wheels made here, pushed
to the test registry), the single-node overlay is applied into a fresh namespace through an overlay of
the test's own (as an operator's would be: its namespace, its keys, its volumes), and every object it
renders passes strict validation for current Kubernetes. Then `examples/adder` is deployed through the
in-cluster lifecycle onto the same cluster with our CLI and with Racetrack's own client, and called
through the in-cluster gateway (its NodePort, and each gateway pod at its pod address). A lifecycle pod
deleted with no grace period in the middle of a deploy leaves that deploy finished by the other replica,
or failed with an error that says why, never in progress; a deploy after it succeeds.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from tests.conftest import EXAMPLES
from tests.infra.docker.support import REGISTRY, TEST_NAMESPACE, remove_jobs, require_engine, require_registry, unique
from tests.infra.kubernetes.test_manifests import VERSIONS
from tests.support.kubernetes import K8S_HOME, REPO_ROOT, KubeCluster
from tests.support.polling import wait_until
from tests.support.services import missing

from trackside.infra.docker.engine import DockerEngine
from trackside.infra.kubernetes.api import KubeApi
from trackside.infra.kubernetes.naming import LABEL_NAME

pytestmark = [pytest.mark.kubernetes, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]

OVERLAY = REPO_ROOT / "deploy" / "kubernetes" / "overlays" / "single-node"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-platform-image"
PLATFORM_REPO = f"{REGISTRY}/trackside/platform"
VOLUMES_DIR = Path("/var/lib/trackside-single-node")
ADMIN_PASSWORD = "e2e-" + secrets.token_urlsafe(12)
CLI = Path(sys.executable).parent / "trackside"
RACETRACK = Path(sys.executable).parent / "racetrack"
# A job as examples/adder, whose replicas take a while to start: a deploy stays in progress long enough
# for a lifecycle pod to be deleted in the middle of it.
SLOW_ADDER = "import time\n\n\nclass Adder:\n    def __init__(self):\n        time.sleep(40)\n\n" + (
    "    def perform(self, a, b):\n        return a + b\n"
)


def kubectl_binary() -> str:
    """kubectl of the cluster's own build when there is one, else the one on PATH."""
    own = K8S_HOME / "bin" / "kubectl"
    if os.access(own, os.X_OK):
        return str(own)
    found = shutil.which("kubectl")
    if found is None:
        missing("kubectl", "no kubectl on PATH to render and apply deploy/kubernetes (../shared/k8s/install.sh)")
    assert found is not None
    return found


@dataclass
class Installation:
    namespace: str
    kubectl: list[str]  # kubectl with the cluster's kubeconfig and the namespace
    api: KubeApi
    lifecycle_url: str  # the lifecycle's NodePort
    gateway_url: str  # the gateway's NodePort
    token: str  # the admin's
    home: Path  # HOME of the CLIs (their saved remotes and tokens)
    objects: list[dict[str, Any]]  # what the overlay rendered

    def run(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.kubectl, *args], input=stdin, capture_output=True, text=True, timeout=300, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result

    def cli(self, program: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(self.home), "PYTHONUNBUFFERED": "1"}
        env.pop("TRACKSIDE_REMOTE", None)
        return subprocess.run(
            [str(program), *args], input=stdin, capture_output=True, text=True, env=env, timeout=600, check=False
        )

    def pods(self, component: str) -> list[dict[str, Any]]:
        return self.api.items("Pod", selector=f"app.kubernetes.io/name=trackside-{component}")

    def deployments_of(self, job: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.lifecycle_url}/api/v1/deploy", headers=self.auth, timeout=30)
        response.raise_for_status()
        return [d for d in response.json() if d["job_name"] == job]

    def call(self, base_url: str, job: str, payload: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{base_url}/job/{job}/latest/api/v1/perform", json=payload, headers=self.auth, timeout=30)

    @property
    def auth(self) -> dict[str, str]:
        return {"X-Racetrack-Auth": self.token}


def wrapper_kustomization(directory: Path, namespace: str, image_tag: str) -> None:
    """An operator's overlay on top of single-node: its namespace, platform image, keys and volumes."""
    directory.mkdir(parents=True, exist_ok=True)
    fernet_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    volume_patches = []
    for volume, claim in (("postgres-data", "data-trackside-postgres-0"), ("plugins", "trackside-plugins")):
        ops = [
            {"op": "replace", "path": "/metadata/name", "value": f"{namespace}-{volume}"},
            {"op": "replace", "path": "/spec/hostPath/path", "value": str(VOLUMES_DIR / namespace / volume)},
            {"op": "replace", "path": "/spec/claimRef", "value": {"namespace": namespace, "name": claim}},
        ]
        name = "trackside-postgres-data" if volume == "postgres-data" else "trackside-plugins"
        volume_patches.append({"target": {"kind": "PersistentVolume", "name": name}, "patch": json.dumps(ops)})
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "resources": [os.path.relpath(OVERLAY, directory)],
        "images": [{"name": PLATFORM_REPO, "newTag": image_tag}],
        "secretGenerator": [
            {
                "name": "trackside-keys",
                "behavior": "replace",
                "literals": [f"TRACKSIDE_AUTH_KEY={secrets.token_hex(32)}", f"TRACKSIDE_SECRETS_KEY={fernet_key}"],
            }
        ],
        "configMapGenerator": [
            {
                "name": "trackside-config",
                "behavior": "merge",
                # the test's job images carry the namespace the test helpers clean up
                "literals": [f"TRACKSIDE_DOCKER_REGISTRY_NAMESPACE={TEST_NAMESPACE}"],
            }
        ],
        "patches": volume_patches,
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))


def build_platform_image(tag: str) -> str:
    image = f"{PLATFORM_REPO}:{tag}"
    result = subprocess.run(
        [str(BUILD_SCRIPT), image],
        capture_output=True,
        text=True,
        timeout=1500,
        env={**os.environ, "PYTHON": sys.executable},
        check=False,
    )
    assert result.returncode == 0, f"build-platform-image failed:\n{result.stdout}\n{result.stderr}"
    assert result.stdout.split() == [image, f"{REGISTRY}/trackside/postgres:15"], result.stdout
    return image


def remove_platform_image(engine: DockerEngine, image: str, tag: str) -> None:
    """This run's tag, from the engine (keeping the layers below it: the next build's cache) and the registry."""
    subprocess.run(engine.command(["rmi", "--no-prune", image]), capture_output=True, check=False)
    with httpx.Client(base_url=f"http://{REGISTRY}", timeout=30) as registry:
        accept = "application/vnd.docker.distribution.manifest.v2+json"
        head = registry.head(f"/v2/trackside/platform/manifests/{tag}", headers={"Accept": accept})
        digest = head.headers.get("Docker-Content-Digest")
        if head.status_code == 200 and digest:
            registry.delete(f"/v2/trackside/platform/manifests/{digest}")


def ready(api: KubeApi) -> bool:
    deployments = api.items("Deployment")
    return bool(deployments) and all(
        (d.get("status") or {}).get("readyReplicas") == d["spec"]["replicas"]
        and (d.get("status") or {}).get("updatedReplicas") == d["spec"]["replicas"]
        for d in deployments
    )


def node_port(api: KubeApi, service: str) -> int:
    return int(api.get("Service", service)["spec"]["ports"][0]["nodePort"])


def uninstall(install: Installation) -> None:
    """Deployments first (foreground: their pods gone), then the namespace, the volumes and their files."""
    for kind in ("deployments", "statefulsets"):
        install.run("delete", kind, "--all", "--cascade=foreground", "--wait=true", "--timeout=240s", check=False)
    base = install.kubectl[:3]
    subprocess.run(
        [*base, "delete", "namespace", install.namespace, "--timeout=300s"], capture_output=True, check=False
    )
    for volume in ("postgres-data", "plugins"):
        subprocess.run(
            [*base, "delete", "persistentvolume", f"{install.namespace}-{volume}", "--timeout=60s"],
            capture_output=True,
            check=False,
        )
    shutil.rmtree(VOLUMES_DIR / install.namespace, ignore_errors=True)


@pytest.fixture(scope="module")
def installed(kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    engine = require_engine()
    require_registry()
    kubectl = kubectl_binary()
    workdir = tmp_path_factory.mktemp("install")
    namespace = f"ts-install-{uuid.uuid4().hex[:8]}"
    tag = f"e2e-{namespace}"
    image = build_platform_image(tag)

    overlay = workdir / "overlay"
    wrapper_kustomization(overlay, namespace, tag)
    rendered = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    objects = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]

    base = [kubectl, "--kubeconfig", str(kube_cluster.kubeconfig)]
    home = workdir / "home"
    home.mkdir()
    jobs: list[str] = []
    with kube_cluster.api(namespace) as api:
        install = Installation(namespace, [*base, "-n", namespace], api, "", "", "", home, objects)
        try:
            install.run("apply", "-f", "-", stdin=rendered.stdout)
            wait_until(lambda: ready(api), timeout=600, what=f"every Deployment of {namespace} ready", interval=2)
            install.lifecycle_url = f"http://127.0.0.1:{node_port(api, 'trackside-lifecycle')}/lifecycle"
            install.gateway_url = f"http://127.0.0.1:{node_port(api, 'trackside-gateway')}/pub"

            # The first admin's password is in one lifecycle pod's data dir: set one, as an operator would.
            pod = install.pods("lifecycle")[0]["metadata"]["name"]
            install.run("exec", "-i", pod, "--", "trackside", "admin", "set-password", "admin", "--password-stdin",
                        stdin=ADMIN_PASSWORD)  # fmt: skip
            login = install.cli(
                CLI, "login", "--remote", install.lifecycle_url, "-u", "admin", "--password-stdin", stdin=ADMIN_PASSWORD
            )
            assert login.returncode == 0, login.stderr
            token = install.cli(CLI, "get", "auth-token", "--remote", install.lifecycle_url)
            assert token.returncode == 0, token.stderr
            install.token = token.stdout.strip()
            yield install
        finally:
            if install.token:
                listed = httpx.get(f"{install.lifecycle_url}/api/v1/job", headers=install.auth, timeout=30)
                if listed.status_code == 200:
                    jobs = [job["name"] for job in listed.json()]
            uninstall(install)
            remove_jobs(engine, *jobs)
            remove_platform_image(engine, image, tag)


def job_copy(tmp_path: Path, name: str, adder_source: str | None = None) -> Path:
    """examples/adder under another name (tests on one cluster share the registry and node)."""
    directory = tmp_path / name
    shutil.copytree(EXAMPLES / "adder", directory)
    manifest = yaml.safe_load((directory / "job.yaml").read_text())
    manifest["name"] = name
    (directory / "job.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    if adder_source is not None:
        (directory / "adder.py").write_text(adder_source)
    return directory


def test_every_rendered_object_passes_strict_validation_and_every_deployment_is_ready(
    installed: Installation,
) -> None:
    kinds = {obj["kind"] for obj in installed.objects}
    assert {"Deployment", "StatefulSet", "Service", "Role", "RoleBinding", "PersistentVolume", "Secret"} <= kinds
    for obj in installed.objects:
        for version in VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
    deployments = {d["metadata"]["name"]: d for d in installed.api.items("Deployment")}
    assert deployments["trackside-lifecycle"]["status"]["readyReplicas"] == 2
    assert deployments["trackside-gateway"]["status"]["readyReplicas"] == 2
    assert {"trackside-supervisor", "trackside-dashboard"} <= set(deployments)
    assert httpx.get(f"{installed.lifecycle_url}/ready", timeout=30).json() == {"ready": True}


def test_our_cli_deploys_adder_through_the_cluster_and_each_gateway_replica_calls_it(
    installed: Installation, tmp_path: Path
) -> None:
    name = unique("adder-cli-")
    deployed = installed.cli(CLI, "deploy", str(job_copy(tmp_path, name)), "--remote", installed.lifecycle_url)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert f"deployed {name} 0.0.1" in deployed.stdout + deployed.stderr

    job_pods = installed.api.items("Pod", selector=f"{LABEL_NAME}={name}")
    assert job_pods and all(pod["status"]["phase"] == "Running" for pod in job_pods)
    assert installed.call(installed.gateway_url, name, {"a": 40, "b": 2}).json() == 42
    gateways = installed.pods("gateway")
    assert len(gateways) == 2
    for gateway in gateways:  # each replica routes it, reached at its pod address
        pod_url = f"http://{gateway['status']['podIP']}:7070/pub"
        assert installed.call(pod_url, name, {"a": 1, "b": 2}).json() == 3
    refused = httpx.post(f"{installed.gateway_url}/job/{name}/latest/api/v1/perform", json={"a": 1, "b": 2})
    assert refused.status_code == 401, "the in-cluster gateway asks for a token"


def test_racetrack_client_deploys_adder_through_the_cluster(installed: Installation, tmp_path: Path) -> None:
    name = unique("adder-rt-")
    assert installed.cli(RACETRACK, "set", "remote", installed.lifecycle_url).returncode == 0
    login = installed.cli(RACETRACK, "login", installed.token)
    assert login.returncode == 0, login.stdout + login.stderr
    deployed = installed.cli(RACETRACK, "deploy", str(job_copy(tmp_path, name)))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert installed.call(installed.gateway_url, name, {"a": 40, "b": 2}).json() == 42
    listed = installed.cli(RACETRACK, "list")
    assert name in listed.stdout and "RUNNING" in listed.stdout, listed.stdout


def test_a_lifecycle_pod_deleted_mid_deploy_leaves_the_deploy_finished_or_cleanly_failed(
    installed: Installation, tmp_path: Path
) -> None:
    name = unique("adder-kill-")
    victim = installed.pods("lifecycle")[0]
    victim_url = f"http://{victim['status']['podIP']}:7070/lifecycle"
    assert installed.cli(CLI, "login", installed.token, "--remote", victim_url).returncode == 0
    env = {**os.environ, "HOME": str(installed.home), "PYTHONUNBUFFERED": "1"}
    deploying = subprocess.Popen(
        [str(CLI), "deploy", str(job_copy(tmp_path, name, SLOW_ADDER)), "--remote", victim_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        # In progress on the victim, past the build: its Deployment is on the cluster, its pods starting.
        wait_until(
            lambda: installed.api.items("Deployment", selector=f"{LABEL_NAME}={name}"),
            timeout=300,
            what=f"{name}'s Deployment created",
            interval=0.2,
        )
        [deployment] = installed.deployments_of(name)
        assert deployment["status"] == "in_progress", deployment
        installed.run("delete", "pod", victim["metadata"]["name"], "--grace-period=0", "--force")
        output, _ = deploying.communicate(timeout=300)
    finally:
        if deploying.poll() is None:
            deploying.kill()
            deploying.communicate()
    assert deploying.returncode != 0, output
    assert "cannot reach" in output or "error" in output.lower(), output

    # The other replica settles it once the victim's lease expires: never left in progress.
    settled = wait_until(
        lambda: [d for d in installed.deployments_of(name) if d["status"] != "in_progress"],
        timeout=300,
        what=f"the deploy of {name} settled by the other lifecycle replica",
        interval=1,
    )
    [final] = settled
    if final["status"] == "done":
        assert installed.call(installed.gateway_url, name, {"a": 2, "b": 3}).json() == 5
    else:
        assert final["status"] == "failed", final
        assert "deploy again" in (final["error"] or ""), final
        # rolled back: nothing of it left on the cluster
        wait_until(
            lambda: not installed.api.items("Deployment", selector=f"{LABEL_NAME}={name}"),
            timeout=120,
            what=f"{name}'s Deployment removed",
        )
        redeployed = installed.cli(CLI, "deploy", str(tmp_path / name), "--remote", installed.lifecycle_url)
        assert redeployed.returncode == 0, redeployed.stdout + redeployed.stderr
        assert installed.call(installed.gateway_url, name, {"a": 2, "b": 3}).json() == 5
    # the replacement pod joins: two lifecycle replicas again
    wait_until(lambda: ready(installed.api), timeout=300, what="the lifecycle back to two ready replicas", interval=1)
