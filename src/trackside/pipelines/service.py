"""The pipelines component: what the API calls (submit, cancel, retry, schedules) and the scheduler it runs.

One `PipelineService` per lifecycle process. With `run_scheduler` (the `pipeline_scheduler` setting,
on by default) it runs the scheduler, the notification deliveries and the cron loop in a thread of
their own; without, it only writes runs to the store for a scheduler elsewhere to pick up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.crypto import load_secret_box
from trackside.errors import AlreadyExists, InvalidInput
from trackside.pipelines.conditions import ACTIVE_RUN, Status
from trackside.pipelines.cron import CronLoop, check_schedule
from trackside.pipelines.definitions import check_name, get_definition, save_definition
from trackside.pipelines.executors import build_executors
from trackside.pipelines.executors.call import CallRunner, OwnerTokens
from trackside.pipelines.models import PipelineRun, PipelineSchedule, PipelineStep
from trackside.pipelines.notifiers import DeliveryWorker
from trackside.pipelines.retention import RetentionLoop
from trackside.pipelines.runs import create_run, get_run, run_json, steps_of
from trackside.pipelines.scheduler import Scheduler
from trackside.pipelines.secrets import seal_pipeline, seal_subscription
from trackside.pipelines.spec import PipelineSpec, Subscription
from trackside.pipelines.store import set_where
from trackside.pipelines.validation import apply_params, parse_pipeline, parse_subscriptions
from trackside.store.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started:
    """A run just written: its id, and its chainr Run body as created, every step PENDING (or kept, in
    a retry). Read before the scheduler is woken: read after, the answer to `POST /api/runs` showed
    steps the scheduler had already started, which chainr's never does."""

    uid: str
    answer: dict[str, Any]

    @classmethod
    def of(cls, session: Session, run: PipelineRun) -> Started:
        return cls(run.id, run_json(run, steps_of(session, [run.id])[run.id]))


class PipelineService:
    def __init__(self, settings: Any, db: Database, plugins: Any = None, run_scheduler: bool | None = None) -> None:
        from trackside.lifecycle.governance import auth_service

        self.settings = settings
        self.db = db
        self.plugins = plugins
        self.executors, self.policy = build_executors(settings)
        self.box = load_secret_box(settings.data_dir, settings.secrets_key or None)
        # Sealed here: delivery rows copy a subscription, secret included.
        self.subscriptions: list[Subscription] = [
            seal_subscription(subscription, self.box)
            for subscription in parse_subscriptions(settings.pipeline_notifications, "settings pipeline_notifications")
        ]
        run_scheduler = settings.pipeline_scheduler if run_scheduler is None else run_scheduler
        self.scheduler: Scheduler | None = None
        if run_scheduler:
            calls = CallRunner(OwnerTokens(auth_service(settings, db), db))
            calls.pub_url = settings.job_pub_url
            self.scheduler = Scheduler(
                db,
                settings.data_dir,
                self.executors,
                calls,
                lambda: self.subscriptions,
                lease_seconds=settings.pipeline_lease_seconds,
                max_running=settings.pipeline_max_running_steps,
                log_notifier=settings.pipeline_log_notifier,
            )
            deliveries = DeliveryWorker(
                db,
                self.box,
                self.scheduler.identity,
                self._plugin_notifiers,
                attempts=settings.pipeline_notification_attempts,
            )
            self.scheduler.on_events = lambda: deliveries.wake.set()
            self.scheduler.add_background(deliveries.loop)
            cron = CronLoop(db, self._start_scheduled, self.cancel_run)
            self.scheduler.add_background(cron.loop)
            self.cron = cron
            self.retention = RetentionLoop(db, settings.data_dir, settings.pipeline_run_retention_days)
            self.scheduler.add_background(self.retention.loop)

    def _plugin_notifiers(self) -> dict[str, Any]:
        if self.plugins is None:
            return {}
        found: dict[str, Any] = self.plugins.pipeline_notifiers()
        return found

    def start(self) -> None:
        if self.scheduler is not None:
            self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        for executor in self.executors.values():  # their watches and connections (steps go on running)
            close = getattr(executor, "close", None)
            if close is not None:
                close()

    def set_pub_url(self, url: str) -> None:
        """The gateway's `/pub` URL for call steps, once `trackside up` knows its port."""
        if self.scheduler is not None:
            self.scheduler.calls.pub_url = url

    def wake(self, run_id: str | None = None) -> None:
        if self.scheduler is not None:
            self.scheduler.wake(run_id)

    # -- runs --------------------------------------------------------------------------------------

    def parse(self, body: Any) -> PipelineSpec:
        return parse_pipeline(body, self.policy)

    def submit(self, body: Any, owner: dict[str, Any], **options: Any) -> str:
        """`start_run` (same options) for callers that want only the new run's id."""
        return self.start_run(body, owner, **options).uid

    def start_run(
        self,
        body: Any,
        owner: dict[str, Any],
        *,
        params: dict[str, Any] | None = None,
        pipeline_name: str | None = None,
        pipeline_version: int | None = None,
        schedule_id: str | None = None,
    ) -> Started:
        """`submit`, with the run as created for the API's answer."""
        if params:
            if not isinstance(body, dict):
                raise InvalidInput("the pipeline must be a JSON object")
            body = apply_params(body, params)
        spec = self.parse(body)
        spec = replace(spec, raw=seal_pipeline(spec.raw, self.box))
        with self.db.session() as session:
            run = create_run(
                session,
                spec,
                owner,
                pipeline_name=pipeline_name,
                pipeline_version=pipeline_version,
                schedule_id=schedule_id,
            )
            started = Started.of(session, run)
        self.wake(started.uid)
        return started

    def cancel_run(self, uid: str, reason: str = "run canceled") -> None:
        with self.db.session() as session:
            run = get_run(session, uid)
            if run.status not in ACTIVE_RUN:
                return
            session.execute(
                set_where(PipelineRun)
                .where(PipelineRun.id == uid, PipelineRun.cancel_requested.is_(None))
                .values(cancel_requested=reason)
            )
        self.wake(uid)

    def retry_run(self, uid: str, owner: dict[str, Any]) -> Started:
        """A new run of the same pipeline and params keeping the SUCCESSFUL steps and their outputs."""
        with self.db.session() as session:
            original = get_run(session, uid)
            if original.status in ACTIVE_RUN:
                raise AlreadyExists(f"run {uid} is still {original.status}: cancel it or wait for it to end")
            spec = parse_pipeline(original.spec, self.policy)
            kept = {
                step.name: step
                for step in session.scalars(select(PipelineStep).where(PipelineStep.run_id == uid))
                if step.status == Status.SUCCESSFUL.value
            }
            run = create_run(
                session,
                spec,
                owner,
                pipeline_name=original.pipeline_name,
                pipeline_version=original.pipeline_version,
                schedule_id=original.schedule_id,
                retry_of=original,
                kept=kept,
            )
            started = Started.of(session, run)
        self.wake(started.uid)
        return started

    # -- definitions and schedules -----------------------------------------------------------------

    def save_definition(self, name: str, body: Any, created_by: str | None) -> tuple[str, int]:
        self.parse(body)
        with self.db.session() as session:
            definition = save_definition(session, name, seal_pipeline(body, self.box), created_by)
            return definition.name, definition.version

    def run_definition(
        self, name: str, version: int | None, params: dict[str, Any] | None, owner: dict[str, Any]
    ) -> Started:
        with self.db.session() as session:
            definition = get_definition(session, name, version)
            body, found_version = definition.spec, definition.version
        return self.start_run(body, owner, params=params, pipeline_name=name, pipeline_version=found_version)

    def create_schedule(self, body: dict[str, Any], owner: dict[str, Any]) -> str:
        name = str(body["name"])
        check_name(name, "schedule")
        check_schedule(body["cron"], body["timezone"], body["concurrencyPolicy"])
        with self.db.session() as session:
            definition = get_definition(session, body["pipeline"], body.get("version"))
            if body.get("params"):
                apply_params(definition.spec, body["params"])
            if session.scalars(select(PipelineSchedule).where(PipelineSchedule.name == name)).first() is not None:
                raise AlreadyExists(f"schedule {name} already exists")
            schedule = PipelineSchedule(
                name=name,
                pipeline_name=body["pipeline"],
                pipeline_version=body.get("version"),
                cron=body["cron"],
                timezone=body["timezone"],
                concurrency_policy=body["concurrencyPolicy"],
                starting_deadline_seconds=body.get("startingDeadlineSeconds"),
                params=body.get("params") or {},
                enabled=body.get("enabled", True),
                owner=owner,
            )
            session.add(schedule)
            session.flush()
            return schedule.id

    def _start_scheduled(self, schedule: PipelineSchedule) -> str:
        with self.db.session() as session:
            definition = get_definition(session, schedule.pipeline_name, schedule.pipeline_version)
            body, version = definition.spec, definition.version
        return self.submit(
            body,
            dict(schedule.owner or {}),
            params=dict(schedule.params or {}),
            pipeline_name=schedule.pipeline_name,
            pipeline_version=version,
            schedule_id=schedule.id,
        )
