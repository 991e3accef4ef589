"""Run and step events: rows written in the same transaction as the transition they tell of.

An event is `{type: START|SUCCESS|FAILURE|SKIPPED|CANCELED, scope: run|job, runUid, job, status,
attempt, reason, timestamp, title, message}` (reference 5.6); chainr's "empty event" for a skipped job
or a canceled run cannot happen: every status has its type. The rows feed server-sent events
(`GET /api/runs/{uid}/events`, resumable with `Last-Event-ID`) and the notifiers (webhook and plugin
deliveries are rows too, written with the event: an outbox, delivered at least once).

`EventBell` wakes this process's event streams when a transaction with events commits; streams also
poll the store now and then, for events written by a scheduler in another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, bindparam, insert, select

from trackside.errors import NotFound
from trackside.pipelines.conditions import Status
from trackside.pipelines.models import PipelineDelivery, PipelineEvent, PipelineRun
from trackside.pipelines.runs import timestamp
from trackside.pipelines.spec import Subscription
from trackside.store.base import utcnow
from trackside.store.database import Database

_EVENTS: Table = PipelineEvent.__table__  # type: ignore[assignment]
_DELIVERIES: Table = PipelineDelivery.__table__  # type: ignore[assignment]
# Built once: values come as execution parameters (see pipelines/state.py for why).
# Ids come back in the order of the rows given (one INSERT ... VALUES (...), (...) RETURNING).
_INSERT_EVENTS = insert(_EVENTS).returning(_EVENTS.c.id, sort_by_parameter_order=True)
_EVENTS_AFTER = (
    select(_EVENTS)
    .where(_EVENTS.c.run_id == bindparam("run_id"), _EVENTS.c.id > bindparam("after"))
    .order_by(_EVENTS.c.id)
)
_RUN_STATUS = select(PipelineRun.__table__.c.status).where(PipelineRun.__table__.c.id == bindparam("run_id"))

EVENT_TYPE = {
    Status.RUNNING: "START",
    Status.SUCCESSFUL: "SUCCESS",
    Status.FAILED: "FAILURE",
    Status.SKIPPED: "SKIPPED",
    Status.CANCELED: "CANCELED",
}
_VERB = {
    Status.RUNNING: "started",
    Status.SUCCESSFUL: "succeeded",
    Status.FAILED: "failed",
    Status.SKIPPED: "was skipped",
    Status.CANCELED: "was canceled",
}


class EventBell:
    """A counter that goes up whenever events commit in this process; waiters see it move, threads
    with `wait` and event loops (the API's event streams) with `wait_async`, woken at once rather
    than on their next poll."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self.count = 0
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def ring(self) -> None:
        with self._condition:
            self.count += 1
            self._condition.notify_all()
            waiters, self._waiters = self._waiters, set()
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, future)

    def wait(self, seen: int, timeout: float) -> int:
        with self._condition:
            self._condition.wait_for(lambda: self.count != seen, timeout)
            return self.count

    async def wait_async(self, seen: int, timeout: float) -> int:
        """The count once it is no longer `seen`, or after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiter = (loop, future)
        with self._condition:
            if self.count != seen:
                return self.count
            self._waiters.add(waiter)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            with self._condition:
                self._waiters.discard(waiter)
        return self.count


def _iso(value: datetime) -> str:
    return timestamp(value) or ""


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


BELL = EventBell()


@dataclass(frozen=True)
class EventView:
    """An event as sent to notifiers and event streams."""

    id: int
    type: str
    scope: str
    run_uid: str
    job: str | None
    status: str
    attempt: int | None
    reason: str | None
    timestamp: str
    title: str
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "scope": self.scope,
            "runUid": self.run_uid,
            "job": self.job,
            "status": self.status,
            "attempt": self.attempt,
            "reason": self.reason,
            "timestamp": self.timestamp,
            "title": self.title,
            "message": self.message,
        }

    @classmethod
    def of(cls, row: PipelineEvent | Row[Any]) -> EventView:
        return cls(
            id=row.id,
            type=row.type,
            scope=row.scope,
            run_uid=row.run_id,
            job=row.job,
            status=row.status,
            attempt=row.attempt,
            reason=row.reason,
            timestamp=_iso(row.created_at),
            title=row.title,
            message=row.message,
        )


@dataclass(frozen=True)
class EventDraft:
    """An event to write with the transition it tells of."""

    run_id: str
    status: Status
    subscriptions: list[Subscription]
    job: str | None = None
    attempt: int | None = None
    reason: str | None = None


def record_events(conn: Connection, drafts: list[EventDraft]) -> list[EventView]:
    """Write a transaction's events in one statement, in order, and a delivery row for each webhook or
    plugin subscription that wants one.

    Core, with the statement built once: the scheduler writes two events per step of a chain (one
    ends, the next starts) on its hot path."""
    created_at = utcnow()
    when = _iso(created_at)
    views = []
    for draft in drafts:
        job, status = draft.job, draft.status
        subject = f"Job {job} of run {draft.run_id}" if job else f"Run {draft.run_id}"
        views.append(
            EventView(
                id=0,  # given by the INSERT below
                type=EVENT_TYPE[status],
                scope="job" if job else "run",
                run_uid=draft.run_id,
                job=job,
                status=status.value,
                attempt=draft.attempt,
                reason=draft.reason,
                timestamp=when,
                title=f"{'Job ' + job if job else 'Run'} {_VERB[status]}",
                message=f"{subject} {_VERB[status]}" + (f": {draft.reason}" if draft.reason else "."),
            )
        )
    rows = [
        {
            "run_id": v.run_uid,
            "type": v.type,
            "scope": v.scope,
            "job": v.job,
            "status": v.status,
            "attempt": v.attempt,
            "reason": v.reason,
            "title": v.title,
            "message": v.message,
            "created_at": created_at,
        }
        for v in views
    ]
    views = [
        replace(v, id=event_id) for v, event_id in zip(views, conn.execute(_INSERT_EVENTS, rows).scalars(), strict=True)
    ]
    deliveries = [
        {"event_id": view.id, "subscription": subscription_json(s), "next_attempt_at": created_at}
        for view, draft in zip(views, drafts, strict=True)
        for s in draft.subscriptions
        if s.kind != "log" and s.wants(view.type, view.scope)
    ]
    if deliveries:
        conn.execute(insert(_DELIVERIES), deliveries)
    return views


def subscription_json(subscription: Subscription) -> dict[str, Any]:
    return {
        "kind": subscription.kind,
        "url": subscription.url,
        "secret": subscription.secret,
        "notifier": subscription.notifier,
        "config": subscription.config,
    }


def events_after(db: Database, uid: str, after: int) -> tuple[list[dict[str, Any]], str]:
    """A run's events after event id `after`, oldest first, and the run's status.

    Read after every commit with events while a run is followed, so in Core with statements built
    once, like the scheduler's writes."""
    with db.engine.connect() as conn:
        status = conn.execute(_RUN_STATUS, {"run_id": uid}).scalar()
        if status is None:
            raise NotFound(f"run {uid} was not found")
        rows = conn.execute(_EVENTS_AFTER, {"run_id": uid, "after": after})
        return [EventView.of(row).to_json() for row in rows], str(status)
