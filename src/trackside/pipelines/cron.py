"""Cron schedules of named pipelines: Argo CronWorkflow's fields on the platform's store.

- `cron`: five fields (minute hour day-of-month month day-of-week) or `@hourly`, `@daily`...,
  read by `croniter`, in the schedule's `timezone` (an IANA name; local times a DST change skips
  do not fire, repeated ones fire once).
- `concurrencyPolicy`: `Allow` (default) starts a run at each tick; `Forbid` skips a tick while a
  run of the schedule is still active; `Replace` cancels the active ones and starts the new one.
- `startingDeadlineSeconds`: a tick found later than this (the platform was down) is recorded as
  missed and not run. Without it, the latest missed tick runs when the platform is back; earlier
  missed ticks are never run (one run, not a burst of catch-up runs).

Firing is a conditional update of `last_tick_at`, so schedulers sharing a store fire a tick once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from sqlalchemy import select
from sqlalchemy.orm import Session

from trackside.auth.subjects import Caller
from trackside.errors import InvalidInput, NotFound
from trackside.pipelines.conditions import Status
from trackside.pipelines.models import PipelineRun, PipelineSchedule
from trackside.pipelines.runs import aware, require_manager, timestamp
from trackside.pipelines.store import set_where
from trackside.store.base import utcnow
from trackside.store.database import Database

log = logging.getLogger(__name__)

POLICIES = ("Allow", "Forbid", "Replace")


def check_schedule(cron: str, timezone: str, policy: str) -> None:
    if not croniter.is_valid(cron):
        raise InvalidInput(f"schedule: {cron!r} is not a cron expression (five fields, or @hourly, @daily...)")
    zone(timezone)
    if policy not in POLICIES:
        raise InvalidInput(f"schedule: concurrencyPolicy {policy!r} is not one of {', '.join(POLICIES)}")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"schedule: unknown timezone {name!r} (use an IANA name such as Europe/Warsaw)") from None


def latest_tick(cron: str, timezone: str, now: datetime) -> datetime:
    """The last time at or before `now` the schedule fires, in UTC."""
    local_now = now.astimezone(zone(timezone))
    iterator = croniter(cron, local_now)
    if croniter.match(cron, local_now.replace(second=0, microsecond=0)):
        tick = local_now.replace(second=0, microsecond=0)
    else:
        tick = iterator.get_prev(datetime)
    return tick.astimezone(UTC)


def next_tick(cron: str, timezone: str, after: datetime) -> datetime:
    return croniter(cron, after.astimezone(zone(timezone))).get_next(datetime).astimezone(UTC)


def schedule_json(schedule: PipelineSchedule) -> dict[str, Any]:
    return {
        "kind": "Schedule",
        "metadata": {
            "selfLink": f"/api/schedules/{schedule.name}",
            "name": schedule.name,
            "createdAt": timestamp(schedule.created_at),
            "owner": (schedule.owner or {}).get("name"),
        },
        "pipeline": schedule.pipeline_name,
        "version": schedule.pipeline_version,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "concurrencyPolicy": schedule.concurrency_policy,
        "startingDeadlineSeconds": schedule.starting_deadline_seconds,
        "params": schedule.params or {},
        "enabled": schedule.enabled,
        "status": {
            "lastTickAt": timestamp(schedule.last_tick_at),
            "lastRun": schedule.last_run_id,
            "lastResult": schedule.last_result,
            "nextTickAt": timestamp(next_tick(schedule.cron, schedule.timezone, utcnow())),
        },
    }


def _schedule(session: Session, name: str) -> PipelineSchedule:
    schedule = session.scalars(select(PipelineSchedule).where(PipelineSchedule.name == name)).first()
    if schedule is None:
        raise NotFound(f"schedule {name} was not found")
    return schedule


def schedule_list(db: Database) -> dict[str, Any]:
    with db.session() as session:
        items = [schedule_json(s) for s in session.scalars(select(PipelineSchedule).order_by(PipelineSchedule.name))]
    return {"kind": "ScheduleList", "metadata": {"selfLink": "/api/schedules"}, "items": items}


def schedule_body(db: Database, name: str) -> dict[str, Any]:
    with db.session() as session:
        return schedule_json(_schedule(session, name))


def delete_schedule(db: Database, caller: Caller, name: str) -> None:
    """Delete a schedule: its owner, staff and holders of `full_access` may."""
    with db.session() as session:
        schedule = _schedule(session, name)
        require_manager(session, caller, schedule.owner, f"delete schedule {name}")
        session.delete(schedule)


StartRun = Callable[[PipelineSchedule], str]
CancelRun = Callable[[str, str], None]


class CronLoop:
    """Fires due ticks; runs as a task of the scheduler's loop (store work in a thread)."""

    def __init__(self, db: Database, start_run: StartRun, cancel_run: CancelRun, interval: float = 1.0) -> None:
        self.db = db
        self.start_run = start_run
        self.cancel_run = cancel_run
        self.interval = interval

    async def loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await asyncio.to_thread(self.fire_due, utcnow())
            except Exception:
                log.exception("pipeline schedules: pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.interval)

    def fire_due(self, now: datetime) -> list[str]:
        """Act on every schedule's latest due tick; returns what was done, one line each."""
        done = []
        with self.db.session() as session:
            schedules = list(session.scalars(select(PipelineSchedule).where(PipelineSchedule.enabled.is_(True))))
        for schedule in schedules:
            try:
                result = self._fire(schedule, now)
            except Exception as exc:
                log.exception("pipeline schedule %s failed to fire", schedule.name)
                result = f"failed: {exc}"
                with self.db.session() as session:
                    session.execute(
                        set_where(PipelineSchedule).where(PipelineSchedule.id == schedule.id).values(last_result=result)
                    )
            if result:
                done.append(f"{schedule.name}: {result}")
        return done

    def _fire(self, schedule: PipelineSchedule, now: datetime) -> str | None:
        tick = latest_tick(schedule.cron, schedule.timezone, now)
        since = aware(schedule.last_tick_at) or aware(schedule.created_at) or now
        if tick <= since:
            return None
        with self.db.session() as session:
            condition = (
                PipelineSchedule.last_tick_at == schedule.last_tick_at
                if schedule.last_tick_at is not None
                else PipelineSchedule.last_tick_at.is_(None)
            )
            claimed = session.execute(
                set_where(PipelineSchedule)
                .where(PipelineSchedule.id == schedule.id, condition)
                .values(last_tick_at=tick)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None  # another scheduler fired it
            active = list(
                session.scalars(
                    select(PipelineRun.id).where(
                        PipelineRun.schedule_id == schedule.id,
                        PipelineRun.status.in_([Status.PENDING.value, Status.RUNNING.value]),
                    )
                )
            )
        late = (now - tick).total_seconds()
        if schedule.starting_deadline_seconds is not None and late > schedule.starting_deadline_seconds:
            result = (
                f"missed the tick of {timestamp(tick)}: found {late:.0f} s late, "
                f"past startingDeadlineSeconds {schedule.starting_deadline_seconds:g}"
            )
            self._note(schedule, result)
            return result
        if active and schedule.concurrency_policy == "Forbid":
            result = f"skipped the tick of {timestamp(tick)}: run {active[0]} is still active (Forbid)"
            self._note(schedule, result)
            return result
        if active and schedule.concurrency_policy == "Replace":
            for run_id in active:
                self.cancel_run(run_id, f"replaced by a newer run of schedule {schedule.name}")
        run_id = self.start_run(schedule)
        result = f"started run {run_id} for the tick of {timestamp(tick)}"
        self._note(schedule, result, run_id)
        return result

    def _note(self, schedule: PipelineSchedule, result: str, run_id: str | None = None) -> None:
        values: dict[str, Any] = {"last_result": result}
        if run_id is not None:
            values["last_run_id"] = run_id
        with self.db.session() as session:
            session.execute(set_where(PipelineSchedule).where(PipelineSchedule.id == schedule.id).values(**values))
