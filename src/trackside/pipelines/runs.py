"""Runs in the store: creating them (new, retried, scheduled) and their API shapes.

The shapes are chainr's (`{"kind": "Run", "metadata": {"selfLink", "uid"}, "status", "jobs": [{"name",
"status"}]}`, list items without `kind`), with our fields added beside chainr's, never instead of them:
`metadata.createdAt/startedAt/finishedAt/retryOf/pipeline/owner`, the run's `reason`, and per job
`reason`, `attempt`, `startedAt`, `finishedAt`, `executor`, `dependsOn` (and in a run's own page
`outputs`, `exitCode`, `attempts`, `keptFrom`). Jobs come in topological order (chainr's order was
only roughly sorted).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.subjects import Caller
from trackside.errors import NotFound
from trackside.pipelines.conditions import Status
from trackside.pipelines.models import PipelineRun, PipelineStep
from trackside.pipelines.spec import PipelineSpec
from trackside.store.base import utcnow

API = "/api"
RUNS = "/api/runs"
SECRET_FIELDS = ("secret",)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; they were stored as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def timestamp(value: datetime | None) -> str | None:
    value = aware(value)
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def owner_of(caller: Caller) -> dict[str, Any]:
    return {
        "type": caller.subject_type.value,
        "name": caller.name,
        "subject_id": caller.subject_id,
        "scopes": caller.scopes,
    }


def create_run(
    session: Session,
    spec: PipelineSpec,
    owner: dict[str, Any],
    *,
    pipeline_name: str | None = None,
    pipeline_version: int | None = None,
    schedule_id: str | None = None,
    retry_of: PipelineRun | None = None,
    kept: dict[str, PipelineStep] | None = None,
) -> PipelineRun:
    """A PENDING run with one PENDING step per job; `kept` steps (a retry's successful ones) come done."""
    run = PipelineRun(
        status=Status.PENDING.value,
        spec=spec.raw,
        params=spec.params,
        pipeline_name=pipeline_name,
        pipeline_version=pipeline_version,
        schedule_id=schedule_id,
        retry_of=retry_of.id if retry_of is not None else None,
        owner=owner,
        created_at=utcnow(),
    )
    session.add(run)
    session.flush()
    kept = kept or {}
    for position, (name, job) in enumerate(spec.jobs.items()):
        step = PipelineStep(run_id=run.id, name=name, position=position, executor=job.executor, attempts=[])
        source = kept.get(name)
        if source is not None:
            step.status = Status.SUCCESSFUL.value
            step.reason = f"kept from run {source.run_id}"
            step.kept_from = source.kept_from or source.run_id
            step.outputs = source.outputs
            step.exit_code = source.exit_code
            step.attempt = source.attempt
            step.attempts = list(source.attempts or [])
            step.started_at = source.started_at
            step.finished_at = source.finished_at
            step.log = source.log
        else:
            step.status = Status.PENDING.value
        session.add(step)
    session.flush()
    return run


def get_run(session: Session, uid: str) -> PipelineRun:
    run = session.get(PipelineRun, uid)
    if run is None:
        raise NotFound(f"run {uid} was not found")
    return run


def steps_of(session: Session, run_ids: Sequence[str]) -> dict[str, list[PipelineStep]]:
    found: dict[str, list[PipelineStep]] = {run_id: [] for run_id in run_ids}
    if not run_ids:
        return found
    rows = session.scalars(
        select(PipelineStep).where(PipelineStep.run_id.in_(list(run_ids))).order_by(PipelineStep.position)
    )
    for step in rows:
        found[step.run_id].append(step)
    return found


def get_step(session: Session, uid: str, job: str) -> PipelineStep:
    step = session.scalars(select(PipelineStep).where(PipelineStep.run_id == uid, PipelineStep.name == job)).first()
    if step is None:
        get_run(session, uid)
        raise NotFound(f"run {uid} has no job {job}")
    return step


def _dependencies(run: PipelineRun, name: str) -> list[dict[str, Any]]:
    raw = (run.spec.get("jobs") or {}).get(name) or {}
    deps = []
    for dep in raw.get("dependsOn") or []:
        conditions = dep.get("conditions") or {}
        condition = conditions.get("on") or ("failure" if conditions.get("failure") else "success")
        deps.append({"job": dep["job"], "condition": condition})
    return deps


def job_json(run: PipelineRun, step: PipelineStep, detail: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": step.name,
        "status": step.status,
        "reason": step.reason,
        "attempt": step.attempt,
        "startedAt": timestamp(step.started_at),
        "finishedAt": timestamp(step.finished_at),
        "executor": step.executor,
        "dependsOn": _dependencies(run, step.name),
    }
    if detail:
        raw = (run.spec.get("jobs") or {}).get(step.name) or {}
        body.update(
            outputs=step.outputs or {},
            exitCode=step.exit_code,
            attempts=list(step.attempts or []),
            keptFrom=step.kept_from,
            allowFailure=bool(raw.get("allowFailure", False)),
            nextAttemptAt=timestamp(step.next_attempt_at) if step.status == Status.PENDING.value else None,
        )
    return body


def metadata(run: PipelineRun) -> dict[str, Any]:
    pipeline = None
    if run.pipeline_name:
        pipeline = {"name": run.pipeline_name, "version": run.pipeline_version}
    return {
        "selfLink": f"{RUNS}/{run.id}",
        "uid": run.id,
        "createdAt": timestamp(run.created_at),
        "startedAt": timestamp(run.started_at),
        "finishedAt": timestamp(run.finished_at),
        "retryOf": run.retry_of,
        "pipeline": pipeline,
        "schedule": run.schedule_id,
        "owner": (run.owner or {}).get("name"),
    }


def run_json(run: PipelineRun, steps: list[PipelineStep], detail: bool = False, kind: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Run"} if kind else {}
    body.update(
        metadata=metadata(run),
        status=run.status,
        reason=run.reason,
        jobs=[job_json(run, step, detail) for step in steps],
    )
    if detail:
        body["params"] = run.params or {}
        body["spec"] = redacted(run.spec)
    return body


def redacted(value: Any) -> Any:
    """A pipeline as shown to readers: notification secrets replaced."""
    if isinstance(value, dict):
        return {k: ("***" if k in SECRET_FIELDS and v else redacted(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(item) for item in value]
    return value


def graph_json(run: PipelineRun, steps: list[PipelineStep]) -> dict[str, Any]:
    """The run's DAG for drawing: nodes with their level (longest path from a root) and status, edges."""
    jobs = run.spec.get("jobs") or {}
    levels: dict[str, int] = {}

    def level(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in levels:
            deps = [d["job"] for d in (jobs.get(name) or {}).get("dependsOn") or [] if d["job"] in jobs]
            levels[name] = 1 + max((level(d, seen | {name}) for d in deps if d not in seen), default=-1)
        return levels[name]

    nodes = []
    edges = []
    for step in steps:
        raw = jobs.get(step.name) or {}
        nodes.append(
            {
                "name": step.name,
                "status": step.status,
                "level": level(step.name),
                "kind": "call" if "call" in raw else "container",
                "executor": step.executor,
                "attempt": step.attempt,
                "reason": step.reason,
            }
        )
        for dep in _dependencies(run, step.name):
            edges.append({"from": dep["job"], "to": step.name, "condition": dep["condition"]})
    return {
        "kind": "RunGraph",
        "metadata": {"selfLink": f"{RUNS}/{run.id}/graph", "uid": run.id},
        "status": run.status,
        "nodes": nodes,
        "edges": edges,
    }
