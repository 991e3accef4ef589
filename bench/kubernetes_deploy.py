"""The kubernetes target: a cached deploy's first 200 through the gateway, beside the docker target's figure.

On the real single-node cluster of ../shared/k8s (used when it runs, else started for the bench and
stopped after). A new version of unchanged source (`examples/adder`, 2 replicas) through `trackside
up` with `infrastructure_target: kubernetes`: the image build is a cache hit, pushed to the registry
the docker target uses (127.0.0.1:5000), and the kubelet runs the pods; measured from the
`POST /deploy` to the first 200 of a client calling it through the gateway every 20 ms. Also a forced
redeploy of the running version with a client calling throughout (it must see no failure).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from bench.common import REPO_ROOT, BenchError, Profile, log, median, workdir
from bench.docker_deploy import _deploy_to_first_200
from bench.platform import platform

JOB = "bench-kube"
NAMESPACE = "trackside-bench"
REGISTRY = "127.0.0.1:5000"
K8S_HOME = Path(os.environ.get("TRACKSIDE_K8S_HOME") or Path.home() / ".cache" / "trackside" / "k8s-1.20.2")
SCRIPTS = Path(os.environ.get("TRACKSIDE_K8S_SCRIPTS") or REPO_ROOT.parent / "shared" / "k8s")


def _api(namespace: str = "default") -> Any:
    from trackside.infra.kubernetes.api import KubeApi
    from trackside.infra.kubernetes.cluster import from_kubeconfig

    config = from_kubeconfig(K8S_HOME / "run" / "kubeconfig")
    config.namespace = namespace
    return KubeApi(config)


def _answers() -> bool:
    try:
        _api().request("GET", "/readyz")
    except Exception:
        return False
    return True


def run(profile: Profile) -> dict[str, Any]:
    if not (K8S_HOME / "bin" / "kubelet").is_file():
        raise BenchError(f"no Kubernetes built in {K8S_HOME} (run ../shared/k8s/install.sh)")
    started_here = False
    if not ((K8S_HOME / "run" / "kubeconfig").is_file() and _answers()):
        result = subprocess.run(["bash", str(SCRIPTS / "start_node.sh")], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BenchError(f"start_node.sh failed: {(result.stdout + result.stderr)[-1000:]}")
        started_here = True
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    api = _api()
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        with workdir("kubernetes-deploy") as tmp:
            deploys = _deploys(tmp, profile.deploy_rounds, namespace)
    finally:
        api.delete("Namespace", namespace)
        if started_here:
            subprocess.run(["bash", str(SCRIPTS / "stop_node.sh")], capture_output=True, check=False)
    return _results(deploys)


def _write_job(directory: Path, version: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO_ROOT / "examples" / "adder" / "adder.py", directory / "adder.py")
    (directory / "job.yaml").write_text(
        f"name: {JOB}\nowner_email: bench@example.com\nversion: {version}\njobtype: python3:latest\n"
        "infrastructure_target: kubernetes\nreplicas: 2\n"
        "jobtype_extra:\n  entrypoint_path: adder.py\n  entrypoint_class: Adder\n"
    )
    return directory


def _deploys(tmp: Path, rounds: int, namespace: str) -> dict[str, list[dict[str, Any]]]:
    measured: dict[str, list[dict[str, Any]]] = {"cached": [], "forced": []}
    env = {
        "TRACKSIDE_DOCKER_REGISTRY_NAMESPACE": NAMESPACE,
        "TRACKSIDE_DOCKER_REGISTRY": REGISTRY,
        "TRACKSIDE_KUBERNETES_CONFIG": str(K8S_HOME / "run" / "kubeconfig"),
        "TRACKSIDE_KUBERNETES_NAMESPACE": namespace,
    }
    with platform(tmp / "data", env=env) as running:
        try:
            # Warm-up (not measured): the first build of this source fills the build cache.
            _deploy_to_first_200(running, _write_job(tmp / "job-warm", "0.0.1"), "0.0.1", job=JOB)
            for round_no in range(rounds):
                version = f"1.{round_no}.0"
                job_dir = _write_job(tmp / f"job-{version}", version)
                cached = _deploy_to_first_200(running, job_dir, version, job=JOB)
                measured["cached"].append(cached)
                forced = _deploy_to_first_200(running, job_dir, version, force=True, job=JOB)
                measured["forced"].append(forced)
                log(
                    f"kubernetes deploy round {round_no + 1}: cached first 200 after {cached['first_200_s']:.2f} s "
                    f"(done {cached['deployment_done_s']:.2f} s); forced redeploy done in "
                    f"{forced['deployment_done_s']:.2f} s, {len(forced['failed_calls'])} failed of "
                    f"{forced['calls']} calls"
                )
        finally:
            for job in running.http.get(f"{running.api}/job").json():
                running.http.delete(f"{running.api}/job/{job['name']}/{job['version']}")
    return measured


def _results(deploys: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    cached, forced = deploys["cached"], deploys["forced"]
    first = round(median([m["first_200_s"] for m in cached]), 3)
    phases: dict[str, float] = {}
    for name in dict.fromkeys(p for m in cached for p in m["phases_s"]):
        phases[name] = round(median([m["phases_s"][name] for m in cached if name in m["phases_s"]]), 3)
    failed = sum(len(m["failed_calls"]) for m in forced)
    return {
        "rounds": deploys,
        "cached_deploy": {
            "first_200_s": first,
            "deployment_done_s": round(median([m["deployment_done_s"] for m in cached]), 3),
            "phases_s": phases,
        },
        "forced_redeploy": {
            "deployment_done_s": round(median([m["deployment_done_s"] for m in forced]), 3),
            "calls": sum(m["calls"] for m in forced),
            "failed_calls": failed,
        },
        "targets": {"forced_redeploy_failed_calls": {"value": failed, "target": "0", "met": failed == 0}},
    }
