"""The scheduler's reads and conditional writes of run and step rows, in SQLAlchemy Core.

A step's end is recorded, its run reconciled and the steps it unblocks claimed in one transaction
per step. Measured on a chain of `call` steps, loading ORM objects for a run and its steps, flushing
them through the unit of work and the ORM's bulk-update path took most of the scheduler's CPU per
step; plain rows into `RunState`/`StepState` and Core statements do the same work for a fraction.
The API, which shows a run once per request, keeps the ORM models (`models.py`) these tables come
from.

Every write is a compare-and-set (`WHERE status = ...`): the caller acts only when it changed the
row, so two schedulers on one store never both move a step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, Update, bindparam, case, select, type_coerce, update

from trackside.pipelines.conditions import Status
from trackside.pipelines.models import PipelineRun, PipelineStep
from trackside.pipelines.runs import aware

RUNS: Table = PipelineRun.__table__  # type: ignore[assignment]
STEPS: Table = PipelineStep.__table__  # type: ignore[assignment]
ACTIVE = (Status.PENDING.value, Status.RUNNING.value)


@dataclass(slots=True)
class RunState:
    """What reconciling a run reads of its row (not its spec: the scheduler parses that once)."""

    id: str
    status: str
    params: dict[str, Any]
    owner: dict[str, Any]
    deadline_at: datetime | None
    cancel_requested: str | None


@dataclass(slots=True)
class StepState:
    """What reconciling a run reads of a step's row; `started_at` and `attempts` only of the step whose
    attempt is being recorded (the others' are not needed, and decoding them was most of the read)."""

    id: str
    run_id: str
    name: str
    status: str
    executor: str
    attempt: int
    started_at: datetime | None
    next_attempt_at: datetime | None
    outputs: dict[str, Any] | None
    attempts: list[dict[str, Any]] | None = None


_RUN_COLUMNS = (
    RUNS.c.id,
    RUNS.c.status,
    RUNS.c.params,
    RUNS.c.owner,
    RUNS.c.deadline_at,
    RUNS.c.cancel_requested,
)
_STEP_COLUMNS = (
    STEPS.c.id,
    STEPS.c.run_id,
    STEPS.c.name,
    STEPS.c.status,
    STEPS.c.executor,
    STEPS.c.attempt,
    STEPS.c.next_attempt_at,
    STEPS.c.outputs,
)

# Statements built once: building one per call (coercing every value into a bind parameter and
# working out its cache key) cost more than running it. Values come as execution parameters.
_ACTIVE_RUNS = select(*_RUN_COLUMNS).where(RUNS.c.status.in_(ACTIVE)).order_by(RUNS.c.created_at)
_ACTIVE_RUNS_OF = (
    select(*_RUN_COLUMNS)
    .where(RUNS.c.status.in_(ACTIVE), RUNS.c.id.in_(bindparam("run_ids", expanding=True)))
    .order_by(RUNS.c.created_at)
)
_RUN = select(*_RUN_COLUMNS).where(RUNS.c.id == bindparam("run_id"))
_RUN_SPEC = select(RUNS.c.spec).where(RUNS.c.id == bindparam("run_id"))
_STEPS_OF = (
    select(*_STEP_COLUMNS).where(STEPS.c.run_id.in_(bindparam("run_ids", expanding=True))).order_by(STEPS.c.position)
)
_RECORDING = STEPS.c.id == bindparam("recording")
_STEPS_RECORDING_ONE_OF = (
    select(
        *_STEP_COLUMNS,
        type_coerce(case((_RECORDING, STEPS.c.started_at)), STEPS.c.started_at.type).label("started_at"),
        type_coerce(case((_RECORDING, STEPS.c.attempts)), STEPS.c.attempts.type).label("attempts"),
    )
    .where(STEPS.c.run_id.in_(bindparam("run_ids", expanding=True)))
    .order_by(STEPS.c.position)
)


def _guarded(table: Table, *conditions: ColumnElement[bool]) -> Update:
    """`UPDATE table SET <the execution's other parameters> WHERE id = :row_id AND conditions`."""
    return update(table).where(table.c.id == bindparam("row_id"), *conditions)


RUN_IF_PENDING = _guarded(RUNS, RUNS.c.status == Status.PENDING.value)
RUN_IF_ACTIVE = _guarded(RUNS, RUNS.c.status.in_(ACTIVE))
RUN_IF_NOT_CANCELED = _guarded(RUNS, RUNS.c.cancel_requested.is_(None))
STEP_IF_PENDING = _guarded(STEPS, STEPS.c.status == Status.PENDING.value)
# An attempt's end: only while the step still runs that attempt.
STEP_IF_RUNNING_ATTEMPT = _guarded(
    STEPS, STEPS.c.status == Status.RUNNING.value, STEPS.c.attempt == bindparam("running_attempt")
)


def active_runs(conn: Connection, run_ids: Iterable[str] | None = None) -> list[RunState]:
    """PENDING and RUNNING runs (of `run_ids`, or all), oldest first."""
    if run_ids is None:
        return [_run(row) for row in conn.execute(_ACTIVE_RUNS)]
    return [_run(row) for row in conn.execute(_ACTIVE_RUNS_OF, {"run_ids": list(run_ids)})]


def run_state(conn: Connection, run_id: str) -> RunState | None:
    row = conn.execute(_RUN, {"run_id": run_id}).first()
    return None if row is None else _run(row)


def _run(row: Any) -> RunState:
    return RunState(
        row.id, row.status, dict(row.params or {}), dict(row.owner or {}), aware(row.deadline_at), row.cancel_requested
    )


def run_spec(conn: Connection, run_id: str) -> Any:
    return conn.execute(_RUN_SPEC, {"run_id": run_id}).scalar_one()


def steps_of(conn: Connection, run_ids: list[str], recording: str | None = None) -> dict[str, list[StepState]]:
    """The runs' steps in order; the start and attempts of step `recording` (whose attempt ends) too."""
    found: dict[str, list[StepState]] = {run_id: [] for run_id in run_ids}
    if recording is None:
        rows = conn.execute(_STEPS_OF, {"run_ids": run_ids})
    else:
        rows = conn.execute(_STEPS_RECORDING_ONE_OF, {"run_ids": run_ids, "recording": recording})
    for row in rows:
        step = StepState(
            row.id,
            row.run_id,
            row.name,
            row.status,
            row.executor,
            row.attempt,
            None,
            aware(row.next_attempt_at),
            row.outputs,
        )
        if recording is not None and row.id == recording:
            step.started_at, step.attempts = aware(row.started_at), list(row.attempts or [])
        found[row.run_id].append(step)
    return found


def update_where(
    conn: Connection, guarded: Update, row_id: str, guard: dict[str, Any] | None = None, **values: Any
) -> bool:
    """Run a `_guarded` UPDATE setting `values`; True when the row still matched and changed."""
    result = conn.execute(guarded, {"row_id": row_id, **(guard or {}), **values})
    return bool(result.rowcount == 1)
