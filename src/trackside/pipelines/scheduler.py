"""The pipeline scheduler: an event loop in a thread of the lifecycle process that moves runs forward.

No task waits on another (chainr blocked a goroutine per job on its dependencies' mutexes): when a
run is submitted or a step ends, the run is reconciled (a step's end in the same transaction that
records it, and the steps it unblocks start at once). Its PENDING steps whose dependencies are all
final are decided by the condition table (`conditions.decide`): SKIPPED at once, or claimed to run,
within the run's `parallelism` and this scheduler's `pipeline_max_running_steps`. Every transition is
a conditional UPDATE (`WHERE status = 'PENDING'`...) committed, with its event, before anything acts on
it, so two schedulers on one store never both start a step.

A RUNNING step carries a lease: `lease_owner` (host:pid:nonce of its scheduler) and `lease_expires`,
renewed every third of `pipeline_lease_seconds`. A step whose lease expired, or whose owner is a dead
process of this host (a SIGKILLed platform, seen at once after its restart), is taken over: the new
owner asks the executor to re-attach (`StepExecutor.attach`) and goes on watching the same container
or process; a `call` step is sent again with the same `Idempotency-Key`. A SUCCESSFUL step is final:
nothing ever starts it again. Every second a pass takes over orphaned steps and looks at the runs
that events may have missed (new or canceled through another process, past their deadline, a retry
due); every SWEEP_SECONDS it looks at every active run.

Stopping the scheduler (SIGTERM) leaves running steps running, exactly like a crash: the next start
re-attaches to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, or_, select

from trackside.pipelines.conditions import FINAL, Condition, Decision, Status, decide, run_status, skip_reason
from trackside.pipelines.events import BELL, EventDraft, EventView, record_events
from trackside.pipelines.executors.base import ExecutorUnavailable, Handle, StepExecutor, StepLaunch, StepOutcome
from trackside.pipelines.executors.call import CallRequest, CallRunner
from trackside.pipelines.logs import LOG_KEEP, attempt_dir, log_path, read_log
from trackside.pipelines.models import PipelineRun, PipelineStep
from trackside.pipelines.notifiers import log_event
from trackside.pipelines.outputs import SubstitutionError, capped, parse_output_lines, substitute, substitute_text
from trackside.pipelines.runs import aware
from trackside.pipelines.spec import JobSpec, PipelineSpec, Subscription
from trackside.pipelines.state import (
    RUN_IF_ACTIVE,
    RUN_IF_NOT_CANCELED,
    RUN_IF_PENDING,
    STEP_IF_PENDING,
    STEP_IF_RUNNING_ATTEMPT,
    STEPS,
    RunState,
    StepState,
    active_runs,
    run_spec,
    run_state,
    steps_of,
    update_where,
)
from trackside.pipelines.store import set_where
from trackside.pipelines.validation import ExecutorPolicy, parse_pipeline
from trackside.store.base import utcnow
from trackside.store.database import Database

log = logging.getLogger(__name__)

FULL_PASS_SECONDS = 1.0
SWEEP_SECONDS = 10.0


class AnyExecutor(ExecutorPolicy):
    """Re-reading a stored run: its steps' executors were checked at submission and are in their rows."""

    def check(self, name: str) -> str | None:
        return None


STORED = AnyExecutor()


def deadline_of(job: JobSpec, now: datetime) -> datetime | None:
    return now + timedelta(seconds=job.timeout_seconds) if job.timeout_seconds else None


def scheduler_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_local_owner(owner: str | None) -> bool:
    """Is this lease held by a process of this host that no longer exists (a crashed platform)?"""
    if not owner:
        return True
    parts = owner.split(":")
    if len(parts) != 3 or parts[0] != socket.gethostname():
        return False
    try:
        pid = int(parts[1])
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Watch:
    """A step this scheduler is running or watching."""

    run_id: str
    step_id: str
    name: str
    attempt: int
    attach: bool
    handle: Handle | None
    task: asyncio.Task[None] | None = None
    cancel_reason: str | None = None
    context: StepContext | None = None  # known at claim time; else read from the store
    cancel_status: Status = Status.CANCELED


@dataclass(frozen=True)
class StepContext:
    """What running a step needs from its run: params, owner, upstream outputs, executor, deadline."""

    spec: PipelineSpec
    params: dict[str, Any]
    owner: dict[str, Any]
    upstream: dict[str, dict[str, Any]]
    executor: str
    deadline: datetime | None


@dataclass
class _Transaction:
    conn: Connection
    drafts: list[EventDraft] = field(default_factory=list)
    events: list[EventView] = field(default_factory=list)
    deliveries: int = 0


class Scheduler:
    def __init__(
        self,
        db: Database,
        data_dir: Path,
        executors: dict[str, StepExecutor],
        calls: CallRunner,
        subscriptions: Callable[[], list[Subscription]],
        *,
        lease_seconds: float = 15.0,
        max_running: int = 64,
        log_notifier: bool = True,
        on_events: Callable[[], None] | None = None,
        identity: str | None = None,
    ) -> None:
        self.db = db
        self.data_dir = data_dir
        self.executors = executors
        self.calls = calls
        self.global_subscriptions = subscriptions
        self.lease_seconds = lease_seconds
        self.max_running = max_running
        self.log_notifier = log_notifier
        self.on_events = on_events
        self.identity = identity or scheduler_identity()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._dirty: set[str] = set()
        self._full_pass = True
        # Runs with a ready step held back by max_running, oldest first: reconciled as slots free up.
        self._starved: dict[str, None] = {}
        self._watches: dict[str, Watch] = {}
        self._specs: dict[str, PipelineSpec] = {}
        self._last_renewal = 0.0
        self._claimed_in_pass = 0
        self._releases: set[asyncio.Task[None]] = set()
        self._background: list[Callable[[asyncio.Event], Any]] = []

    # -- lifecycle ---------------------------------------------------------------------------------

    def add_background(self, factory: Callable[[asyncio.Event], Any]) -> None:
        """Run `factory(stopping)` as a task of the scheduler's loop (notifications, cron)."""
        self._background.append(factory)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run_thread, name="pipeline-scheduler", daemon=True)
        self._thread.start()
        self._started.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        loop = self.loop
        if loop is None or self._stopping is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self, run_id: str | None = None) -> None:
        """Reconcile `run_id` (or every active run) soon; safe from any thread."""
        loop = self.loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._mark, run_id)

    def _mark(self, run_id: str | None) -> None:
        if run_id is None:
            self._full_pass = True
        else:
            self._dirty.add(run_id)
        if self._wake is not None:
            self._wake.set()

    def _run_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._started.set()
        background = [asyncio.create_task(factory(self._stopping)) for factory in self._background]
        loop = asyncio.get_running_loop()
        next_full = next_sweep = 0.0
        try:
            while not self._stopping.is_set():
                now = loop.time()
                try:
                    if now >= next_full or self._full_pass:
                        # Every second: orphaned steps, and the runs that need a look without having
                        # been woken (new or canceled by another process, past a deadline, a retry
                        # due). Every SWEEP_SECONDS, or when asked: every active run.
                        sweep = self._full_pass or now >= next_sweep
                        self._full_pass = False
                        next_full = now + FULL_PASS_SECONDS
                        self._adopt_orphans()
                        if sweep:
                            next_sweep = now + SWEEP_SECONDS
                            self._starved.clear()
                            self._dirty.clear()
                            self._reconcile(None)
                        else:
                            wanted, self._dirty = self._needing_attention() | self._dirty, set()
                            if wanted:
                                self._reconcile(wanted)
                    elif self._dirty:
                        dirty, self._dirty = self._dirty, set()
                        self._reconcile(dirty)
                    if now - self._last_renewal >= self.lease_seconds / 3:
                        self._renew_leases()
                        self._last_renewal = now
                except Exception:
                    log.exception("pipeline scheduler: pass failed")
                    await asyncio.sleep(0.5)
                if self._dirty or self._full_pass:
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.01, next_full - loop.time()))
        finally:
            for watch in list(self._watches.values()):
                if watch.task is not None:
                    watch.task.cancel()
            tasks = [w.task for w in self._watches.values() if w.task is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            if self._releases:
                await asyncio.gather(*self._releases, return_exceptions=True)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self.calls.close()

    # -- transactions ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Any:
        with self.db.engine.begin() as conn:
            tx = _Transaction(conn)
            yield tx
            if tx.drafts:
                tx.events = record_events(conn, tx.drafts)
                tx.deliveries = sum(
                    1
                    for draft, event in zip(tx.drafts, tx.events, strict=True)
                    for s in draft.subscriptions
                    if s.kind != "log" and s.wants(event.type, event.scope)
                )
        if tx.events:
            self._after_commit(tx.events, tx.deliveries)

    def _after_commit(self, events: list[EventView], deliveries: int) -> None:
        if self.log_notifier:
            for event in events:
                log_event(event)
        BELL.ring()
        if deliveries and self.on_events is not None:
            self.on_events()

    def _event(
        self,
        tx: _Transaction,
        run: RunState,
        status: Status,
        job: str | None = None,
        attempt: int | None = None,
        reason: str | None = None,
    ) -> None:
        """An event, written with the transaction's others when it commits."""
        subscriptions = [*self.global_subscriptions(), *self._spec(tx.conn, run.id).notifications]
        tx.drafts.append(EventDraft(run.id, status, subscriptions, job, attempt, reason))

    def _spec(self, conn: Connection, run_id: str) -> PipelineSpec:
        """The run's parsed spec: read and parsed once per run by this scheduler."""
        spec = self._specs.get(run_id)
        if spec is None:
            spec = self._specs[run_id] = parse_pipeline(run_spec(conn, run_id), STORED)
        return spec

    # -- reconciling -------------------------------------------------------------------------------

    def _needing_attention(self) -> set[str]:
        """Active runs that a pass must look at though nothing here woke it: PENDING ones (submitted
        by another process), canceled ones, those past their deadline, those with a retry due."""
        now = utcnow()
        due = select(PipelineStep.run_id).where(
            PipelineStep.status == Status.PENDING.value,
            PipelineStep.next_attempt_at.is_not(None),
            PipelineStep.next_attempt_at <= now,
        )
        with self.db.session() as session:
            return set(
                session.scalars(
                    select(PipelineRun.id).where(
                        PipelineRun.status.in_([Status.PENDING.value, Status.RUNNING.value]),
                        or_(
                            PipelineRun.status == Status.PENDING.value,
                            PipelineRun.cancel_requested.is_not(None),
                            PipelineRun.deadline_at <= now,
                            PipelineRun.id.in_(due),
                        ),
                    )
                )
            )

    def _reconcile(self, run_ids: set[str] | None) -> None:
        to_watch: list[Watch] = []
        self._claimed_in_pass = 0
        with self._transaction() as tx:
            # The spec is read only when this scheduler has not parsed it yet; step logs not at all.
            runs = active_runs(tx.conn, run_ids)
            if not runs:
                return
            steps = steps_of(tx.conn, [run.id for run in runs])
            for run in runs:
                try:
                    to_watch += self._reconcile_run(tx, run, steps[run.id])
                except Exception:
                    log.exception("pipeline scheduler: run %s could not be reconciled", run.id)
        for watch in to_watch:
            self._start_watch(watch)

    def _reconcile_run(self, tx: _Transaction, run: RunState, steps: list[StepState]) -> list[Watch]:
        now = utcnow()
        spec = self._spec(tx.conn, run.id)
        if run.status == Status.PENDING.value:
            deadline = now + timedelta(seconds=spec.timeout_seconds) if spec.timeout_seconds else None
            if not update_where(
                tx.conn,
                RUN_IF_PENDING,
                run.id,
                status=Status.RUNNING.value,
                started_at=now,
                deadline_at=deadline,
            ):
                return []
            run.status, run.deadline_at = Status.RUNNING.value, deadline
            self._event(tx, run, Status.RUNNING)
            if deadline is not None:
                self._wake_at(run.id, deadline)
        if run.cancel_requested is None and run.deadline_at is not None and now >= run.deadline_at:
            reason = f"run timed out after {spec.timeout_seconds:g} s"
            update_where(tx.conn, RUN_IF_NOT_CANCELED, run.id, cancel_requested=reason)
            run.cancel_requested = reason
        if run.cancel_requested is not None:
            return self._reconcile_canceled(tx, run, steps)

        statuses = {step.name: step.status for step in steps}
        running = sum(1 for step in steps if step.status == Status.RUNNING.value)
        started: list[Watch] = []
        for step in steps:
            if step.status != Status.PENDING.value:
                continue
            job = spec.jobs.get(step.name)
            if job is None:
                continue
            next_at = step.next_attempt_at
            if next_at is not None and now < next_at:
                self._wake_at(run.id, next_at)
                continue
            pairs = [(dep.condition, statuses.get(dep.job, Status.SKIPPED.value)) for dep in job.depends_on]
            decision = decide(pairs)
            if decision == Decision.WAIT:
                continue
            if decision == Decision.SKIP:
                reason = skip_reason((dep.job, dep.condition, statuses[dep.job]) for dep in job.depends_on)
                if self._finish_pending(tx, step, Status.SKIPPED, reason, now):
                    statuses[step.name] = Status.SKIPPED.value
                    self._event(tx, run, Status.SKIPPED, job=step.name, reason=reason)
                continue
            if spec.parallelism is not None and running >= spec.parallelism:
                continue
            if self.max_running and len(self._watches) + self._claimed_in_pass >= self.max_running:
                self._starved[run.id] = None
                continue
            watch = self._claim_step(tx, run, spec, step, job, steps, now)
            if watch is not None:
                statuses[step.name] = Status.RUNNING.value
                running += 1
                started.append(watch)
        if all(status in FINAL for status in statuses.values()):
            self._finish_run(tx, run, steps, statuses)
        return started

    def _finish_pending(self, tx: _Transaction, step: StepState, status: Status, reason: str, now: datetime) -> bool:
        if update_where(
            tx.conn,
            STEP_IF_PENDING,
            step.id,
            status=status.value,
            reason=reason,
            finished_at=now,
            next_attempt_at=None,
        ):
            step.status = status.value
            return True
        return False

    def _claim_step(
        self,
        tx: _Transaction,
        run: RunState,
        spec: PipelineSpec,
        step: StepState,
        job: JobSpec,
        steps: list[StepState],
        now: datetime,
    ) -> Watch | None:
        """Claim a step to run, with what running it needs from its run."""
        watch = self._claim(tx, run, step, job, now)
        if watch is not None:
            watch.context = StepContext(
                spec,
                run.params,
                run.owner,
                {s.name: dict(s.outputs) for s in steps if s.outputs},
                step.executor,
                deadline_of(job, now),
            )
            self._claimed_in_pass += 1
        return watch

    def _claim(self, tx: _Transaction, run: RunState, step: StepState, job: JobSpec, now: datetime) -> Watch | None:
        attempt = step.attempt + 1
        if not update_where(
            tx.conn,
            STEP_IF_PENDING,
            step.id,
            status=Status.RUNNING.value,
            attempt=attempt,
            started_at=now,
            finished_at=None,
            deadline_at=deadline_of(job, now),
            next_attempt_at=None,
            reason=None,
            handle=None,
            lease_owner=self.identity,
            lease_expires=now + timedelta(seconds=self.lease_seconds),
        ):
            return None
        step.status, step.attempt, step.started_at = Status.RUNNING.value, attempt, now
        self._event(tx, run, Status.RUNNING, job=step.name, attempt=attempt)
        return Watch(run.id, step.id, step.name, attempt, attach=False, handle=None)

    def _reconcile_canceled(self, tx: _Transaction, run: RunState, steps: list[StepState]) -> list[Watch]:
        """A canceled run: running steps are killed and end CANCELED, pending ones end SKIPPED, except
        the steps that wait on others only with `always` (the table runs them after SKIPPED and
        CANCELED too: cleanups, reports): those still run once their dependencies are final, and a
        cancel does not kill them. A run past its timeout stops everything."""
        reason = run.cancel_requested or "run canceled"
        timed_out = reason.startswith("run timed out")
        spec = self._spec(tx.conn, run.id)
        now = utcnow()

        def finally_step(name: str) -> bool:
            job = spec.jobs.get(name)
            return (
                not timed_out
                and job is not None
                and bool(job.depends_on)
                and all(dep.condition == Condition.ALWAYS for dep in job.depends_on)
            )

        statuses = {step.name: step.status for step in steps}
        started: list[Watch] = []
        changed = True
        while changed:  # a step skipped now may let an `always` step after it decide in this pass
            changed = False
            for step in steps:
                if step.status != Status.PENDING.value:
                    continue
                job = spec.jobs.get(step.name)
                if job is None or not finally_step(step.name):
                    if self._finish_pending(tx, step, Status.SKIPPED, reason, now):
                        statuses[step.name] = Status.SKIPPED.value
                        self._event(tx, run, Status.SKIPPED, job=step.name, reason=reason)
                        changed = True
                    continue
                pairs = [(dep.condition, statuses.get(dep.job, Status.SKIPPED.value)) for dep in job.depends_on]
                if decide(pairs) != Decision.RUN:
                    continue
                if self.max_running and len(self._watches) + self._claimed_in_pass >= self.max_running:
                    self._starved[run.id] = None
                    continue
                watch = self._claim_step(tx, run, spec, step, job, steps, now)
                if watch is not None:
                    statuses[step.name] = Status.RUNNING.value
                    started.append(watch)
                    changed = True
        for step in steps:
            if step.status == Status.RUNNING.value and not finally_step(step.name):
                watch = self._watches.get(step.id)
                if watch is not None and watch.cancel_reason is None and watch.task is not None:
                    watch.cancel_reason = reason
                    watch.task.cancel()
        if all(status in FINAL for status in statuses.values()):
            self._finish_run(tx, run, steps, statuses, Status.FAILED if timed_out else Status.CANCELED, reason)
        return started

    def _finish_run(
        self,
        tx: _Transaction,
        run: RunState,
        steps: list[StepState],
        statuses: dict[str, str],
        status: Status | None = None,
        reason: str | None = None,
    ) -> None:
        spec = self._spec(tx.conn, run.id)
        if status is None:
            allow = {name: job.allow_failure for name, job in spec.jobs.items()}
            status = run_status({name: (s, allow.get(name, False)) for name, s in statuses.items()})
            failed = [n for n, s in statuses.items() if s == Status.FAILED.value and not allow.get(n, False)]
            reason = f"job(s) failed: {', '.join(failed)}" if failed else None
        if update_where(tx.conn, RUN_IF_ACTIVE, run.id, status=status.value, finished_at=utcnow(), reason=reason):
            run.status = status.value
            self._event(tx, run, status, reason=reason)
            self._specs.pop(run.id, None)

    def _wake_at(self, run_id: str, when: datetime) -> None:
        if self.loop is None:
            return
        delay = max(0.0, (when - utcnow()).total_seconds())
        self.loop.call_later(delay + 0.001, self._mark, run_id)

    # -- leases ------------------------------------------------------------------------------------

    def _renew_leases(self) -> None:
        if not self._watches:
            return
        with self.db.session() as session:
            session.execute(
                set_where(PipelineStep)
                .where(PipelineStep.lease_owner == self.identity, PipelineStep.status == Status.RUNNING.value)
                .values(lease_expires=utcnow() + timedelta(seconds=self.lease_seconds))
            )

    def _adopt_orphans(self) -> None:
        """Take over RUNNING steps whose scheduler is gone (lease expired, or a dead process of this host)."""
        now = utcnow()
        adopted: list[Watch] = []
        with self.db.session() as session:
            rows = list(
                session.scalars(
                    select(PipelineStep).where(
                        PipelineStep.status == Status.RUNNING.value,
                        or_(PipelineStep.lease_owner.is_(None), PipelineStep.lease_owner != self.identity),
                    )
                )
            )
            for step in rows:
                expires = aware(step.lease_expires)
                if not (expires is None or expires < now or _dead_local_owner(step.lease_owner)):
                    continue
                moved = session.execute(
                    set_where(PipelineStep)
                    .where(
                        PipelineStep.id == step.id,
                        PipelineStep.status == Status.RUNNING.value,
                        PipelineStep.lease_owner == step.lease_owner
                        if step.lease_owner is not None
                        else PipelineStep.lease_owner.is_(None),
                    )
                    .values(lease_owner=self.identity, lease_expires=now + timedelta(seconds=self.lease_seconds))
                )
                if moved.rowcount == 1:  # type: ignore[attr-defined]
                    log.info("pipeline scheduler: taking over step %s of run %s", step.name, step.run_id)
                    adopted.append(Watch(step.run_id, step.id, step.name, step.attempt, True, step.handle))
        for watch in adopted:
            self._start_watch(watch)

    # -- running a step ----------------------------------------------------------------------------

    def _start_watch(self, watch: Watch) -> None:
        if watch.step_id in self._watches:
            return
        self._watches[watch.step_id] = watch
        watch.task = asyncio.get_running_loop().create_task(self._supervise(watch))

    def _context(self, watch: Watch) -> StepContext:
        """What an adopted step needs from its run (a claimed one got it at claim time)."""
        with self.db.engine.connect() as conn:
            run = run_state(conn, watch.run_id)
            steps = steps_of(conn, [watch.run_id])[watch.run_id]
            step = next((s for s in steps if s.id == watch.step_id), None)
            if run is None or step is None:
                raise LookupError(f"step {watch.name} of run {watch.run_id} is gone")
            deadline = conn.execute(select(STEPS.c.deadline_at).where(STEPS.c.id == step.id)).scalar_one()
            return StepContext(
                self._spec(conn, run.id),
                run.params,
                run.owner,
                {s.name: dict(s.outputs) for s in steps if s.outputs},
                step.executor,
                aware(deadline),
            )

    async def _supervise(self, watch: Watch) -> None:
        outcome: StepOutcome
        outputs: dict[str, Any] | None = None
        settled = False
        try:
            try:
                context = watch.context or self._context(watch)
                job = context.spec.jobs[watch.name]
                if job.is_call:
                    outcome, outputs = await self._run_call(watch, context, job)
                else:
                    outcome, outputs = await self._run_container(watch, context, job)
            except asyncio.CancelledError:
                if watch.cancel_reason is None:
                    return  # the scheduler is stopping: the step goes on, the next start re-attaches
                outcome = StepOutcome(None, watch.cancel_reason)
                settled = self._finish_watch(watch, watch.cancel_status, outcome, None)
                return
            except Exception as exc:
                log.exception("pipeline scheduler: step %s of run %s failed to run", watch.name, watch.run_id)
                outcome = StepOutcome(None, f"internal error: {type(exc).__name__}: {exc}")
            settled = self._finish_watch(watch, None, outcome, outputs)
        finally:
            self._watches.pop(watch.step_id, None)
            if not settled:
                self._mark(watch.run_id)  # not recorded with its run reconciled: a pass looks at the run
            self._release_slots()

    def _release_slots(self) -> None:
        """A step ended: as many runs held back by max_running as there are free slots get a pass."""
        free = self.max_running - len(self._watches) if self.max_running else len(self._starved)
        if free <= 0 or not self._starved:
            return
        for run_id in list(self._starved)[:free]:
            del self._starved[run_id]
            self._mark(run_id)

    def _finish_watch(
        self, watch: Watch, forced: Status | None, outcome: StepOutcome, outputs: dict[str, Any] | None
    ) -> bool:
        """Record the attempt and, in the same transaction, move its run on: the steps it unblocks are
        claimed and started now, not on a later pass (one commit and one read of the run per step).
        False when that did not happen and a pass must look at the run."""
        self._watches.pop(watch.step_id, None)
        started = self._record(watch, forced, outcome, outputs)
        if started is None:
            return False
        for successor in started:
            self._start_watch(successor)
        return True

    @staticmethod
    def _remaining(context: StepContext) -> float | None:
        if context.deadline is None:
            return None
        return max(0.0, (context.deadline - utcnow()).total_seconds())

    async def _run_call(
        self, watch: Watch, context: StepContext, job: JobSpec
    ) -> tuple[StepOutcome, dict[str, Any] | None]:
        assert job.call is not None
        params, upstream = context.params, context.upstream
        try:
            payload = substitute(job.call.payload, params, upstream)
            path = substitute_text(job.call.path, params, upstream)
            headers = {k: substitute_text(v, params, upstream) for k, v in job.call.headers.items()}
        except SubstitutionError as exc:
            return StepOutcome(None, str(exc), {"final": True}), None
        request = CallRequest(
            watch.run_id,
            watch.name,
            watch.attempt,
            job.call.job,
            job.call.version,
            path,
            job.call.method,
            payload,
            headers,
        )
        call = self.calls.call(request, context.owner)
        timeout = self._remaining(context)
        try:
            if timeout is not None:
                result = await asyncio.wait_for(call, timeout)
            else:
                result = await call
        except TimeoutError:
            reason = f"timed out after {job.timeout_seconds:g} s"
            return StepOutcome(None, reason, log=f"{self.calls.request_log(request)}no answer: {reason}\n"), None
        if not result.ok:
            return StepOutcome(1, result.error, log=result.log), None
        try:
            return StepOutcome(0, log=result.log), capped(result.outputs or {})
        except SubstitutionError as exc:
            return StepOutcome(None, str(exc), {"final": True}, log=result.log), None

    async def _run_container(
        self, watch: Watch, context: StepContext, job: JobSpec
    ) -> tuple[StepOutcome, dict[str, Any] | None]:
        executor = self.executors.get(context.executor)
        if executor is None:
            reason = f"executor {context.executor} is not available on this server"
            return StepOutcome(None, reason, {"final": True}), None
        try:
            env = {k: substitute_text(v, context.params, context.upstream) for k, v in job.env.items()}
        except SubstitutionError as exc:
            return StepOutcome(None, str(exc), {"final": True}), None
        work = attempt_dir(self.data_dir, watch.run_id, watch.name, watch.attempt)
        launch = StepLaunch(
            run_uid=watch.run_id,
            job=watch.name,
            attempt=watch.attempt,
            image=job.image or "",
            command=job.run or "",
            env=env,
            work_dir=work,
            log_path=work / "log",
            timeout_seconds=job.timeout_seconds,
        )
        handle: Handle | None = None
        if watch.attach:
            handle = await executor.attach(launch, watch.handle)
        try:
            if handle is None:
                if work.exists():
                    shutil.rmtree(work, ignore_errors=True)
                work.mkdir(parents=True, exist_ok=True)
                try:
                    handle = await executor.launch(launch)
                except ExecutorUnavailable as exc:
                    return StepOutcome(None, str(exc)), None
                self._save_handle(watch, handle)
            watch.handle = handle
            timeout = self._remaining(context)
            try:
                if timeout is not None:
                    outcome = await asyncio.wait_for(executor.wait(launch, handle), timeout)
                else:
                    outcome = await executor.wait(launch, handle)
            except TimeoutError:
                await executor.kill(launch, handle)
                return StepOutcome(None, f"timed out after {job.timeout_seconds:g} s"), self._outputs(launch)
            except asyncio.CancelledError:
                if watch.cancel_reason is not None:
                    await executor.kill(launch, handle)
                    await executor.release(launch, handle)
                raise
        except ExecutorUnavailable as exc:
            return StepOutcome(None, str(exc)), None
        outputs = self._outputs(launch)
        self._release_later(executor, launch, handle)
        return outcome, outputs

    def _release_later(self, executor: StepExecutor, launch: StepLaunch, handle: Handle) -> None:
        """Remove the attempt's leftovers off the critical path (its log and exit code are read already)."""

        async def release() -> None:
            try:
                await executor.release(launch, handle)
            except Exception:
                log.warning("pipeline scheduler: could not release %s of run %s", launch.job, launch.run_uid)

        task = asyncio.get_running_loop().create_task(release())
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    def _outputs(self, launch: StepLaunch) -> dict[str, Any] | None:
        text = read_log(launch.log_path)
        if not text:
            return None
        return dict(parse_output_lines(text.splitlines())) or None

    def _save_handle(self, watch: Watch, handle: Handle) -> None:
        with self.db.session() as session:
            session.execute(
                set_where(PipelineStep)
                .where(PipelineStep.id == watch.step_id, PipelineStep.lease_owner == self.identity)
                .values(handle=handle)
            )

    def _record(
        self, watch: Watch, forced: Status | None, outcome: StepOutcome, outputs: dict[str, Any] | None
    ) -> list[Watch] | None:
        """Write how the attempt ended (final, or back to PENDING for a retry after its backoff), then
        reconcile its run in the same transaction. The steps claimed to start next, or None when the
        attempt was not recorded (no longer this scheduler's) or its run not reconciled."""
        now = utcnow()
        if outcome.log is not None:
            text: str | None = outcome.log[-LOG_KEEP:]
        else:
            text = read_log(log_path(self.data_dir, watch.run_id, watch.name, watch.attempt), LOG_KEEP)
        with self._transaction() as tx:
            run = run_state(tx.conn, watch.run_id)
            # With the ending step's start and attempts (it gets one more attempt): one query for both.
            steps = steps_of(tx.conn, [watch.run_id], watch.step_id)[watch.run_id] if run is not None else []
            step = next((s for s in steps if s.id == watch.step_id), None)
            if run is None or step is None or step.status != Status.RUNNING.value or step.attempt != watch.attempt:
                return None
            if not self._record_attempt(tx, run, step, watch, forced, outcome, outputs, now, text):
                return None
            if run.status not in (Status.PENDING.value, Status.RUNNING.value):
                return []
            self._claimed_in_pass = 0
            try:
                return self._reconcile_run(tx, run, steps)
            except Exception:
                log.exception("pipeline scheduler: run %s could not be reconciled", run.id)
                return None

    def _record_attempt(
        self,
        tx: _Transaction,
        run: RunState,
        step: StepState,
        watch: Watch,
        forced: Status | None,
        outcome: StepOutcome,
        outputs: dict[str, Any] | None,
        now: datetime,
        text: str | None,
    ) -> bool:
        """Write the attempt's end; False when the step was no longer this attempt's to record."""
        job = self._spec(tx.conn, run.id).jobs[watch.name]
        if forced is not None:
            status = forced
        elif outcome.succeeded:
            status = Status.SUCCESSFUL
        else:
            status = Status.FAILED
        record = {
            "attempt": watch.attempt,
            "status": status.value,
            "reason": outcome.reason,
            "exitCode": outcome.exit_code,
            "startedAt": (step.started_at or now).isoformat().replace("+00:00", "Z"),
            "finishedAt": now.isoformat().replace("+00:00", "Z"),
        }
        values: dict[str, Any] = {
            "attempts": [*(step.attempts or []), record],
            "exit_code": outcome.exit_code,
            "log": text,
            "lease_owner": None,
            "lease_expires": None,
        }
        retryable = (
            status == Status.FAILED
            and not outcome.details.get("final")
            and run.cancel_requested is None
            and watch.attempt <= job.retry.limit
        )
        if retryable:
            delay = job.retry.backoff.delay(watch.attempt)
            values.update(
                status=Status.PENDING.value,
                next_attempt_at=now + timedelta(seconds=delay),
                reason=(
                    f"attempt {watch.attempt} {outcome.reason or 'failed'}; "
                    f"attempt {watch.attempt + 1} of {job.retry.limit + 1} in {delay:g} s"
                ),
            )
        else:
            values.update(status=status.value, finished_at=now, reason=outcome.reason, outputs=outputs or {})
        if not update_where(tx.conn, STEP_IF_RUNNING_ATTEMPT, step.id, {"running_attempt": watch.attempt}, **values):
            return False
        step.status = values["status"]
        step.next_attempt_at = values.get("next_attempt_at")
        if not retryable:
            step.outputs = values["outputs"]
            self._event(tx, run, status, job=watch.name, attempt=watch.attempt, reason=outcome.reason)
        return True
