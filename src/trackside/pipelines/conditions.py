"""Statuses, the condition table, skip propagation and the run status rule: pure functions.

chainr's table, extended with `conditions.on` (docs/pipelines.md, "Conditions and statuses"). A step waits until
every dependency has a final status; then each dependency is "ok" or not by the step's condition on it,
and the step runs only if every one is ok (AND), else it is SKIPPED:

| dependency ends | success (default, failure:false) | failure (failure:true) | completion | always |
|---|---|---|---|---|
| SUCCESSFUL | ok | skip | ok | ok |
| FAILED | skip | ok | ok | ok |
| SKIPPED | skip | skip | skip | ok |
| CANCELED | skip | skip | skip | ok |

A run is FAILED when any step FAILED without `allowFailure` (a handled failure still fails the run, as
in chainr), CANCELED when it was canceled, and SUCCESSFUL otherwise; SKIPPED steps never count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum


class Status(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELED = "CANCELED"


# chainr's palette for them (its UI's), which the dashboard and the CLI both show.
STATUS_COLOURS: dict[str, str] = {
    Status.PENDING: "#c69162",
    Status.RUNNING: "#6296c6",
    Status.SUCCESSFUL: "#67a567",
    Status.FAILED: "#c67462",
    Status.SKIPPED: "#d2cdd5",
    Status.CANCELED: "#d2cdd5",
}
FINAL = frozenset({Status.SUCCESSFUL, Status.FAILED, Status.SKIPPED, Status.CANCELED})
ACTIVE_RUN = frozenset({Status.PENDING, Status.RUNNING})


class Condition(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    COMPLETION = "completion"
    ALWAYS = "always"


class Decision(StrEnum):
    WAIT = "WAIT"
    RUN = "RUN"
    SKIP = "SKIP"


_OK: dict[Condition, frozenset[Status]] = {
    Condition.SUCCESS: frozenset({Status.SUCCESSFUL}),
    Condition.FAILURE: frozenset({Status.FAILED}),
    Condition.COMPLETION: frozenset({Status.SUCCESSFUL, Status.FAILED}),
    Condition.ALWAYS: frozenset(FINAL),
}


def is_final(status: str) -> bool:
    return status in FINAL


def dependency_ok(condition: Condition, status: Status | str) -> bool:
    """One cell of the table: does a dependency that ended `status` let the step run?"""
    return Status(status) in _OK[condition]


def decide(dependencies: Iterable[tuple[Condition, Status | str]]) -> Decision:
    """RUN, SKIP or WAIT for a PENDING step, from (its condition on a dependency, that dependency's status)."""
    pairs = list(dependencies)
    if any(not is_final(status) for _, status in pairs):
        return Decision.WAIT
    return Decision.RUN if all(dependency_ok(cond, status) for cond, status in pairs) else Decision.SKIP


def skip_reason(dependencies: Iterable[tuple[str, Condition, Status | str]]) -> str:
    """Why a step is skipped: the first dependency whose status its condition does not accept."""
    for name, condition, status in dependencies:
        if not dependency_ok(condition, status):
            return f"dependency {name} is {status} (condition: {condition.value})"
    return ""


def run_status(steps: Mapping[str, tuple[Status | str, bool]], canceled: bool = False) -> Status:
    """The final status of a run whose steps are all final: name -> (status, allowFailure)."""
    if canceled:
        return Status.CANCELED
    if any(Status(status) == Status.FAILED and not allow for status, allow in steps.values()):
        return Status.FAILED
    return Status.SUCCESSFUL
