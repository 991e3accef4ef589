"""The kubernetes executor's Job (valid for current Kubernetes, strict), its name and labels, and when a
server offers the executor (the kubernetes target's cluster discovery). No cluster needed: the Job is
made by the executor's own code, not written here."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
from tests.pipelines.conftest import local_settings

from trackside.infra.kubernetes.naming import LABEL_MANAGED_BY, LABEL_PLATFORM
from trackside.pipelines.executors import build_executors
from trackside.pipelines.executors.base import LABEL_ATTEMPT, LABEL_JOB, LABEL_RUN, StepLaunch
from trackside.pipelines.executors.kubernetes import KubernetesExecutor, job_name, step_job
from trackside.pipelines.validation import PipelineInvalid, parse_pipeline

VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]
PLATFORM = "0123456789abcdef0123456789abcdef"
RUN = "5f0c1c9e-8d4e-4c2b-9a51-0d1d2c3b4a59"
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: one
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: "t0ken"}
contexts:
- name: c
  context: {cluster: one, user: u, namespace: steps}
current-context: c
"""


def launch(tmp_path: Path, job: str = "build", **extra: object) -> StepLaunch:
    values: dict[str, object] = {
        "run_uid": RUN,
        "job": job,
        "attempt": 2,
        "image": "busybox",
        "command": 'echo "::output x=1"',
        "env": {"B": "2", "A": "1"},
        "work_dir": tmp_path,
        "log_path": tmp_path / "log",
        **extra,
    }
    return StepLaunch(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("timeout", [None, 2.5])
@pytest.mark.parametrize("job", ["build", "Build_Step.2", "x" * 60])
def test_the_step_job_passes_strict_validation(tmp_path: Path, version: str, timeout: float | None, job: str) -> None:
    obj = step_job(launch(tmp_path, job, timeout_seconds=timeout), PLATFORM, "trackside/python3-base:bookworm")
    kubernetes_validate.validate(obj, version, strict=True)


def test_the_job_runs_the_step_once_in_container_main_with_its_env_and_deadline(tmp_path: Path) -> None:
    obj = step_job(launch(tmp_path, timeout_seconds=2.5), PLATFORM, "img:1")
    spec = obj["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert (obj["apiVersion"], obj["kind"]) == ("batch/v1", "Job")
    assert spec["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 3  # whole seconds, never shorter than the timeout
    assert container["name"] == "main" and container["image"] == "img:1"
    assert container["command"] == ["sh", "-c", 'echo "::output x=1"']
    assert container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert container["imagePullPolicy"] == "Never"  # air-gapped unless the operator allows pulls
    assert "activeDeadlineSeconds" not in step_job(launch(tmp_path), PLATFORM, "img:1")["spec"]


def test_the_job_and_its_pod_are_labelled_with_platform_run_step_and_attempt(tmp_path: Path) -> None:
    obj = step_job(launch(tmp_path, "Build_Step.2"), PLATFORM, "img:1")
    expected = {
        LABEL_MANAGED_BY: "trackside",
        LABEL_PLATFORM: PLATFORM,
        LABEL_RUN: RUN,
        LABEL_JOB: "Build_Step.2",
        LABEL_ATTEMPT: "2",
    }
    assert obj["metadata"]["labels"] == expected
    assert obj["spec"]["template"]["metadata"]["labels"] == expected
    assert obj["metadata"]["annotations"]["trackside.pipeline/job-name"] == "Build_Step.2"


def test_job_names_are_dns_labels_and_step_names_differing_in_case_get_different_ones(tmp_path: Path) -> None:
    plain = job_name(launch(tmp_path, "build"))
    assert plain == f"ts-{RUN[:8]}-build-2"
    upper, lower = job_name(launch(tmp_path, "Build")), job_name(launch(tmp_path, "build"))
    assert upper != lower and upper.endswith("-2")
    long = job_name(launch(tmp_path, "Very_Long." * 10))
    assert len(long) <= 63 and long == long.lower() and "_" not in long and "." not in long


def test_the_executor_is_offered_when_a_cluster_is_found(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    settings = local_settings(tmp_path / "data", kubernetes_config=str(kubeconfig))
    executors, policy = build_executors(settings)
    executor = executors["kubernetes"]
    assert isinstance(executor, KubernetesExecutor)
    assert executor.api.namespace == "steps" and executor.pull_policy == "Never"
    body = {"kind": "Pipeline", "executor": "kubernetes", "jobs": {"a": {"image": "busybox", "run": "true"}}}
    assert parse_pipeline(body, policy).jobs["a"].executor == "kubernetes"


def test_the_executors_namespace_and_pull_policy_are_settings(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    settings = local_settings(
        tmp_path / "data",
        pipeline_kubernetes_config=str(kubeconfig),
        pipeline_kubernetes_namespace="pipelines",
        pipeline_kubernetes_image_pull_policy="IfNotPresent",
        kubernetes_config="off",
    )
    executor = build_executors(settings)[0]["kubernetes"]
    assert isinstance(executor, KubernetesExecutor)
    assert executor.api.namespace == "pipelines" and executor.pull_policy == "IfNotPresent"


def test_without_a_cluster_a_pipeline_asking_for_kubernetes_is_refused_with_the_reason(tmp_path: Path) -> None:
    settings = local_settings(tmp_path / "data", kubernetes_config="off")
    executors, policy = build_executors(settings)
    assert "kubernetes" not in executors
    body = {"kind": "Pipeline", "jobs": {"a": {"image": "busybox", "run": "true", "executor": "kubernetes"}}}
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline(body, policy)
    assert "the kubernetes executor is off on this server" in str(caught.value)


def test_a_kubeconfig_that_does_not_exist_turns_the_executor_off_with_the_reason(tmp_path: Path) -> None:
    settings = local_settings(tmp_path / "data", kubernetes_config=str(tmp_path / "missing"))
    executors, policy = build_executors(settings)
    assert "kubernetes" not in executors
    assert "does not exist" in (policy.check("kubernetes") or "")


def test_the_server_can_make_kubernetes_the_default_executor(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    settings = local_settings(tmp_path / "data", kubernetes_config=str(kubeconfig), pipeline_executor="kubernetes")
    policy = build_executors(settings)[1]
    body = {
        "kind": "Pipeline",
        "jobs": {"a": {"image": "busybox", "run": "true"}, "b": {"image": "x", "run": "true", "executor": "local"}},
    }
    jobs = parse_pipeline(body, policy).jobs
    assert (jobs["a"].executor, jobs["b"].executor) == ("kubernetes", "local")
