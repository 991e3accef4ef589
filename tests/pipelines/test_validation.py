"""What `POST /api/runs` refuses (400), and the messages that name the job."""

from __future__ import annotations

from typing import Any

import pytest
from tests.pipelines.support import README_PIPELINE

from trackside.errors import InvalidInput
from trackside.pipelines.conditions import Condition
from trackside.pipelines.validation import ExecutorPolicy, PipelineInvalid, apply_params, parse_pipeline

LOCAL = ExecutorPolicy(default="local", available=frozenset({"local", "docker"}))


def problems(body: Any, policy: ExecutorPolicy = LOCAL) -> list[str]:
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline(body, policy)
    return caught.value.problems


def job(**fields: Any) -> dict[str, Any]:
    return {"image": "busybox", "run": "true", **fields}


def test_the_readme_pipeline_is_valid_and_ordered_topologically() -> None:
    spec = parse_pipeline(README_PIPELINE, LOCAL)
    assert spec.order == ["first", "second", "success", "error"]
    assert spec.jobs["error"].depends_on[0].condition == Condition.FAILURE
    assert spec.jobs["first"].executor == "local"


def test_an_empty_pipeline_is_valid_as_in_chainr() -> None:
    assert parse_pipeline({"kind": "Pipeline", "jobs": {}}, LOCAL).order == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"jobs": {}}, '/: "kind" value is required'),
        ({"kind": "Pipeline"}, '/: "jobs" value is required'),
        ({"kind": "Workflow", "jobs": {}}, "/kind: must equal 'Pipeline'"),
        ({"kind": "Pipeline", "jobs": {}, "extra": 1}, '/: additional properties "extra" not allowed'),
        ({"kind": "Pipeline", "jobs": {"a": job(colour="red")}}, '/jobs/a: additional properties "colour" not allowed'),
        ({"kind": "Pipeline", "jobs": {"a": {"image": "busybox"}}}, '/jobs/a: "run" value is required'),
        ({"kind": "Pipeline", "jobs": {"a": job(run=5)}}, "/jobs/a/run: type should be string"),
        (
            {"kind": "Pipeline", "jobs": {"a": job(dependsOn=[{"job": "b", "conditions": {"x": 1}}]), "b": job()}},
            '/jobs/a/dependsOn/0/conditions: additional properties "x" not allowed',
        ),
    ],
)
def test_schema_errors_name_the_path_as_chainr_did(body: dict[str, Any], expected: str) -> None:
    assert any(p.startswith(expected) for p in problems(body)), problems(body)


def test_every_schema_problem_is_reported_joined_by_commas() -> None:
    with pytest.raises(PipelineInvalid) as caught:
        parse_pipeline({"kind": "Pipeline", "jobs": {"a": {"run": 1}, "b": {"image": 2}}}, LOCAL)
    assert ", " in caught.value.message
    assert len(caught.value.problems) >= 2


def test_an_unknown_dependency_is_refused_naming_the_job() -> None:
    found = problems({"kind": "Pipeline", "jobs": {"deploy": job(dependsOn=[{"job": "biuld"}])}})
    assert found == ["/jobs/deploy/dependsOn/0/job: job deploy depends on unknown job 'biuld'"]


def test_a_cycle_is_refused_naming_its_jobs() -> None:
    body = {
        "kind": "Pipeline",
        "jobs": {
            "a": job(dependsOn=[{"job": "c"}]),
            "b": job(dependsOn=[{"job": "a"}]),
            "c": job(dependsOn=[{"job": "b"}]),
        },
    }
    [message] = problems(body)
    assert "dependency cycle" in message
    assert all(name in message for name in "abc")


def test_a_job_depending_on_itself_is_refused() -> None:
    assert problems({"kind": "Pipeline", "jobs": {"a": job(dependsOn=[{"job": "a"}])}}) == [
        "/jobs/a/dependsOn/0/job: job a depends on itself"
    ]


@pytest.mark.parametrize("name", ["has space", "-lead", "trail-", "x" * 64, "semi:colon", "émoji"])
def test_names_that_cannot_be_container_names_are_refused(name: str) -> None:
    [message] = problems({"kind": "Pipeline", "jobs": {name: job()}})
    assert message.startswith(f"/jobs/{name}: job name {name!r} cannot be a container name")


@pytest.mark.parametrize("name", ["First", "a_b", "a.b", "x" * 63, "9"])
def test_chainr_names_that_are_kubernetes_label_values_are_accepted(name: str) -> None:
    assert parse_pipeline({"kind": "Pipeline", "jobs": {name: job()}}, LOCAL).order == [name]


def test_a_job_with_both_call_and_image_is_refused() -> None:
    assert problems({"kind": "Pipeline", "jobs": {"a": job(call={"job": "adder"})}}) == [
        "/jobs/a: a job has either call, or image and run, not both"
    ]


def test_a_call_step_needs_no_image_and_defaults_to_perform_on_latest() -> None:
    spec = parse_pipeline({"kind": "Pipeline", "jobs": {"add": {"call": {"job": "adder"}}}}, LOCAL)
    call = spec.jobs["add"].call
    assert call is not None
    assert (call.job, call.version, call.path, call.method) == ("adder", "latest", "/api/v1/perform", "POST")
    assert spec.jobs["add"].executor == "call"


def test_an_executor_that_is_off_is_refused_with_the_operator_s_reason() -> None:
    policy = ExecutorPolicy(default="docker", available=frozenset({"docker"}), disabled_reasons={"local": "off here"})
    assert problems({"kind": "Pipeline", "jobs": {"a": job(executor="local")}}, policy) == ["/jobs/a: off here"]
    assert "unknown executor 'nomad'" in problems({"kind": "Pipeline", "jobs": {"a": job(executor="nomad")}})[0]


def test_contradicting_failure_and_on_are_refused() -> None:
    body = {
        "kind": "Pipeline",
        "jobs": {"a": job(), "b": job(dependsOn=[{"job": "a", "conditions": {"failure": True, "on": "success"}}])},
    }
    assert "contradicts" in problems(body)[0]


def test_expressions_must_name_declared_params_and_upstream_outputs() -> None:
    body = {
        "kind": "Pipeline",
        "params": {"url": "x"},
        "jobs": {
            "a": job(env={"U": "${{ params.url }}"}),
            "b": job(env={"V": "${{ params.nope }}", "W": "${{ jobs.c.outputs.x }}"}, dependsOn=[{"job": "a"}]),
            "c": job(env={"X": "${{ jobs.a.outputs.y }}", "Y": "${{ nonsense }}"}, dependsOn=[{"job": "a"}]),
        },
    }
    found = problems(body)
    assert any("params.nope is not a declared param" in p for p in found)
    assert any("jobs.c.outputs.x refers to job c, which is not upstream of b" in p for p in found)
    assert any("nonsense" in p and "is not an expression" in p for p in found)


def test_run_params_override_declared_defaults_and_undeclared_ones_are_refused() -> None:
    body = {"kind": "Pipeline", "params": {"n": 1}, "jobs": {}}
    assert apply_params(body, {"n": 2})["params"] == {"n": 2}
    with pytest.raises(InvalidInput, match="unknown param\\(s\\) m: the pipeline declares n"):
        apply_params(body, {"m": 3})


def test_notifications_take_one_kind_each() -> None:
    body = {"kind": "Pipeline", "jobs": {}, "notifications": [{"on": ["FAILURE"], "webhook": "http://x", "log": True}]}
    assert problems(body) == ["/notifications/0: give exactly one of log, webhook or notifier"]
