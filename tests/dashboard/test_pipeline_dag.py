"""Where the run page draws each step of a run's DAG: one column per level (the longest path from a
root), one row per step in its column, an edge per dependency."""

from __future__ import annotations

from typing import Any

from trackside.dashboard.views.pipelines import GAP_X, NODE_W, PAD, dag_of


def run_of(jobs: dict[str, list[tuple[str, str]]]) -> dict[str, Any]:
    return {
        "metadata": {"uid": "r-1"},
        "jobs": [
            {
                "name": name,
                "status": "PENDING",
                "attempt": 0,
                "reason": None,
                "dependsOn": [{"job": dep, "condition": condition} for dep, condition in deps],
            }
            for name, deps in jobs.items()
        ],
    }


def column(x: int) -> int:
    return (x - PAD) // (NODE_W + GAP_X)


def test_a_step_sits_one_column_after_its_deepest_dependency() -> None:
    run = run_of(
        {
            "first": [],
            "second": [],
            "success": [("first", "success")],
            "error": [("first", "failure")],
            "last": [("success", "success"), ("second", "always")],
        }
    )
    dag = dag_of(run)
    columns = {node.name: column(node.x) for node in dag.nodes}
    assert columns == {"first": 0, "second": 0, "success": 1, "error": 1, "last": 2}
    rows = {node.name: node.y for node in dag.nodes}
    assert rows["first"] < rows["second"] and rows["success"] < rows["error"]
    assert sorted(edge.condition for edge in dag.edges) == ["always", "failure", "success", "success"]
    assert dag.width >= PAD + 3 * NODE_W and all(
        node.href.startswith("/dashboard/pipelines/runs/r-1/jobs/") for node in dag.nodes
    )


def test_an_empty_run_draws_an_empty_graph() -> None:
    dag = dag_of(run_of({}))
    assert dag.nodes == [] and dag.edges == [] and dag.width > 0 and dag.height > 0
