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
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trackside.auth.permissions import Resource
from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.errors import Forbidden, InvalidInput, NotFound
from trackside.lifecycle.access import Grants
from trackside.pipelines.conditions import ACTIVE_RUN, Status
from trackside.pipelines.logs import log_path
from trackside.pipelines.models import PipelineRun, PipelineStep
from trackside.pipelines.spec import PipelineSpec
from trackside.store.base import utcnow
from trackside.store.database import Database

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


def require_manager(session: Session, caller: Caller, owner: dict[str, Any] | None, action: str) -> None:
    """403 unless the caller may `action` (cancel, retry, delete) what `owner` made: the owner, staff and
    holders of `full_access` may."""
    owner = owner or {}
    if owner.get("type") == caller.subject_type.value and owner.get("name") == caller.name:
        return
    if not (caller.is_staff or Grants.of(session, caller).allows(Scope.FULL_ACCESS, Resource())):
        raise Forbidden(f"{caller.display} may not {action}: it belongs to {owner.get('name')}")


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


# -- for the API, each in a transaction of its own -------------------------------------------------


def require_run_manager(db: Database, caller: Caller, uid: str) -> None:
    """403 unless the caller may cancel or retry run `uid` (404 for an unknown run)."""
    with db.session() as session:
        run = get_run(session, uid)
        require_manager(session, caller, run.owner, f"change run {run.id}")


def run_body(db: Database, uid: str, detail: bool = True) -> dict[str, Any]:
    with db.session() as session:
        return run_json(get_run(session, uid), steps_of(session, [uid])[uid], detail=detail)


def run_list(db: Database, status: str | None, pipeline: str | None, limit: int | None, offset: int) -> dict[str, Any]:
    """chainr's RunList, newest first: runs with one of the statuses (comma-separated) and of a named
    pipeline; `limit` after `offset`; with how many of all that match are active."""
    filters: list[Any] = []
    if status:
        wanted = [s.strip().upper() for s in status.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in Status.__members__]
        if unknown:
            raise InvalidInput(f"unknown status {', '.join(unknown)}; choose from {', '.join(Status)}")
        filters.append(PipelineRun.status.in_(wanted))
    if pipeline:
        filters.append(PipelineRun.pipeline_name == pipeline)
    query = select(PipelineRun).where(*filters).order_by(PipelineRun.created_at.desc(), PipelineRun.id)
    if offset:
        query = query.offset(offset)
    if limit:
        query = query.limit(limit + 1)  # one more than asked: whether another page follows
    with db.session() as session:
        runs = list(session.scalars(query))
        more = limit is not None and len(runs) > limit
        runs = runs[:limit] if limit else runs
        steps = steps_of(session, [run.id for run in runs])
        items = [run_json(run, steps[run.id], kind=False) for run in runs]
        # Active runs among all that match (not only this page): chainr's home count.
        active = session.scalar(
            select(func.count())
            .select_from(PipelineRun)
            .where(*filters, PipelineRun.status.in_([s.value for s in ACTIVE_RUN]))
        )
    return {
        "kind": "RunList",
        "metadata": {"selfLink": RUNS, "active": int(active or 0), "offset": offset, "hasMore": more},
        "items": items,
    }


def run_graph(db: Database, uid: str) -> dict[str, Any]:
    with db.session() as session:
        return graph_json(get_run(session, uid), steps_of(session, [uid])[uid])


def step_body(db: Database, uid: str, job: str) -> dict[str, Any]:
    """A step of a run in detail, as chainr's Job."""
    with db.session() as session:
        body = job_json(get_run(session, uid), get_step(session, uid, job), detail=True)
    body["kind"] = "Job"
    body["metadata"] = {"selfLink": f"{RUNS}/{uid}/jobs/{job}", "run": uid}
    return body


def log_source(
    db: Database, data_dir: Path, uid: str, job: str, attempt: int | None
) -> tuple[Path | None, int, str, str | None]:
    """(log file, attempt, step status, stored log) of a step's attempt (the latest by default)."""
    with db.session() as session:
        step = get_step(session, uid, job)
        wanted = attempt or step.attempt
        if attempt is not None and not 1 <= attempt <= max(step.attempt, 0):
            raise NotFound(f"job {job} of run {uid} has no attempt {attempt} (attempts so far: {step.attempt})")
        stored = step.log if wanted == step.attempt else None
        path = log_path(data_dir, step.kept_from or uid, job, wanted) if wanted else None
        return path, wanted, step.status, stored
