"""The condition table, skip propagation and the run status rule, pinned; and checked on random DAGs.

`REFERENCE` is chainr's table (reference 1.2) extended with `conditions.on` (5.2), written out cell by
cell here, independently of `trackside.pipelines.conditions`; `expected_run` is a reference model of a
whole run built only on it. The property tests compare it with the pure functions on many random DAGs
and with the real scheduler (local executor, SQLite/PostgreSQL store) on fewer.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.pipelines.support import OWNER, wait_for_run_in_store

from trackside.pipelines.conditions import Condition, Decision, Status, decide, dependency_ok, run_status
from trackside.pipelines.service import PipelineService

OK, SKIP = True, False
REFERENCE: dict[str, dict[str, bool]] = {
    # dependency's final status -> {condition: does the dependent run?}
    "SUCCESSFUL": {"success": OK, "failure": SKIP, "completion": OK, "always": OK},
    "FAILED": {"success": SKIP, "failure": OK, "completion": OK, "always": OK},
    "SKIPPED": {"success": SKIP, "failure": SKIP, "completion": SKIP, "always": OK},
    "CANCELED": {"success": SKIP, "failure": SKIP, "completion": SKIP, "always": OK},
}


@pytest.mark.parametrize(
    ("dependency", "condition"),
    [(status, condition) for status in REFERENCE for condition in REFERENCE[status]],
)
def test_each_cell_of_the_condition_table(dependency: str, condition: str) -> None:
    assert dependency_ok(Condition(condition), dependency) is REFERENCE[dependency][condition]
    expected = Decision.RUN if REFERENCE[dependency][condition] else Decision.SKIP
    assert decide([(Condition(condition), dependency)]) == expected


@pytest.mark.parametrize("waiting", ["PENDING", "RUNNING"])
def test_a_step_waits_while_any_dependency_is_not_final(waiting: str) -> None:
    assert decide([(Condition.ALWAYS, "FAILED"), (Condition.ALWAYS, waiting)]) == Decision.WAIT


def test_dependencies_combine_with_and() -> None:
    assert decide([(Condition.SUCCESS, "SUCCESSFUL"), (Condition.FAILURE, "FAILED")]) == Decision.RUN
    assert decide([(Condition.SUCCESS, "SUCCESSFUL"), (Condition.SUCCESS, "FAILED")]) == Decision.SKIP


def test_a_step_without_dependencies_runs() -> None:
    assert decide([]) == Decision.RUN


def test_a_handled_failure_still_fails_the_run_as_in_chainr() -> None:
    steps = {"first": ("FAILED", False), "success": ("SKIPPED", False), "error": ("SUCCESSFUL", False)}
    assert run_status(steps) == Status.FAILED


def test_allow_failure_keeps_a_failed_step_from_failing_the_run() -> None:
    assert run_status({"first": ("FAILED", True), "second": ("SUCCESSFUL", False)}) == Status.SUCCESSFUL


def test_skipped_steps_do_not_count_against_the_run() -> None:
    assert run_status({"a": ("SKIPPED", False), "b": ("SUCCESSFUL", False)}) == Status.SUCCESSFUL
    assert run_status({}) == Status.SUCCESSFUL  # chainr: `jobs: {}` ends SUCCESSFUL


def test_a_canceled_run_is_canceled_whatever_its_steps() -> None:
    assert run_status({"a": ("SUCCESSFUL", False)}, canceled=True) == Status.CANCELED


# -- random DAGs -----------------------------------------------------------------------------------

CONDITION_FORMS: list[dict[str, Any] | None] = [
    None,
    {"failure": False},
    {"failure": True},
    {"on": "success"},
    {"on": "failure"},
    {"on": "completion"},
    {"on": "always"},
]


def _condition_of(form: dict[str, Any] | None) -> str:
    if not form:
        return "success"
    if "on" in form:
        return str(form["on"])
    return "failure" if form["failure"] else "success"


@st.composite
def dags(draw: st.DrawFn, max_jobs: int = 7) -> dict[str, Any]:
    """A pipeline of up to `max_jobs` jobs (each depends only on earlier ones) and each job's exit code."""
    count = draw(st.integers(1, max_jobs))
    jobs: dict[str, Any] = {}
    names = [f"j{i}" for i in range(count)]
    for index, name in enumerate(names):
        deps = draw(st.lists(st.sampled_from(names[:index]), unique=True, max_size=3)) if index else []
        job: dict[str, Any] = {"image": "busybox", "run": f"exit {draw(st.sampled_from([0, 0, 1]))}"}
        if deps:
            job["dependsOn"] = []
            for dep in deps:
                form = draw(st.sampled_from(CONDITION_FORMS))
                job["dependsOn"].append({"job": dep, **({"conditions": form} if form else {})})
        if draw(st.booleans()) and draw(st.booleans()):
            job["allowFailure"] = True
        jobs[name] = job
    order = list(jobs)
    shuffled = draw(st.permutations(order))  # the pipeline may list jobs in any order
    return {"kind": "Pipeline", "jobs": {name: jobs[name] for name in shuffled}}


def expected_run(pipeline: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The reference model: each job's final status and the run's, from REFERENCE alone."""
    jobs = pipeline["jobs"]
    statuses: dict[str, str] = {}

    def status_of(name: str) -> str:
        if name not in statuses:
            job = jobs[name]
            runs = all(
                REFERENCE[status_of(dep["job"])][_condition_of(dep.get("conditions"))]
                for dep in job.get("dependsOn", [])
            )
            statuses[name] = ("SUCCESSFUL" if job["run"] == "exit 0" else "FAILED") if runs else "SKIPPED"
        return statuses[name]

    for name in jobs:
        status_of(name)
    failed = any(s == "FAILED" and not jobs[n].get("allowFailure") for n, s in statuses.items())
    return ("FAILED" if failed else "SUCCESSFUL"), statuses


def simulate(pipeline: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """What the engine's pure functions make of the pipeline, deciding steps as the scheduler does."""
    from trackside.pipelines.validation import parse_pipeline

    spec = parse_pipeline(pipeline)
    statuses = {name: "PENDING" for name in spec.jobs}
    while any(s == "PENDING" for s in statuses.values()):
        for name, job in spec.jobs.items():
            if statuses[name] != "PENDING":
                continue
            decision = decide([(dep.condition, statuses[dep.job]) for dep in job.depends_on])
            if decision == Decision.SKIP:
                statuses[name] = "SKIPPED"
            elif decision == Decision.RUN:
                statuses[name] = "SUCCESSFUL" if job.run == "exit 0" else "FAILED"
    allow = {name: job.allow_failure for name, job in spec.jobs.items()}
    return run_status({n: (s, allow[n]) for n, s in statuses.items()}).value, statuses


@settings(max_examples=300, deadline=None)
@given(dags())
def test_the_engine_rules_agree_with_the_reference_model_on_random_dags(pipeline: dict[str, Any]) -> None:
    assert simulate(pipeline) == expected_run(pipeline)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dags(max_jobs=5))
def test_the_scheduler_runs_random_dags_as_the_reference_model_says(
    service: PipelineService, pipeline: dict[str, Any]
) -> None:
    uid = service.submit(pipeline, OWNER)
    run = wait_for_run_in_store(service.db, uid)
    expected_status, expected_jobs = expected_run(pipeline)
    assert {job["name"]: job["status"] for job in run["jobs"]} == expected_jobs
    assert run["status"] == expected_status
    ran = {job["name"] for job in run["jobs"] if job["attempt"]}
    assert ran == {name for name, status in expected_jobs.items() if status != "SKIPPED"}
