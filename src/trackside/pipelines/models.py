"""Pipeline tables in the platform's store: runs, steps, events, notification deliveries, named
definitions and cron schedules. Migration `0004_pipelines` creates them.

A run and its steps are the whole truth about a run: the scheduler keeps nothing it cannot rebuild
from these rows. A RUNNING step carries a lease (`lease_owner`, `lease_expires`) held by the scheduler
watching it, and the `handle` its executor gave (a container id, a process's work directory), so a
scheduler that takes over an expired lease re-attaches to the work instead of starting it again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from trackside.store.base import Base, new_id, utcnow


class PipelineRun(Base):
    __tablename__ = "pipeline_run"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(16), default="PENDING", index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    pipeline_name: Mapped[str | None] = mapped_column(String(128), index=True)
    pipeline_version: Mapped[int | None] = mapped_column(Integer)
    schedule_id: Mapped[str | None] = mapped_column(String(36), index=True)
    retry_of: Mapped[str | None] = mapped_column(String(36))
    # Who started it: {"type", "name", "subject_id", "scopes"}; call steps run with their permissions.
    owner: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    deadline_at: Mapped[datetime | None] = mapped_column()
    # Set by cancel (or a run timeout, or a Replace schedule): the reason the scheduler stops it for.
    cancel_requested: Mapped[str | None] = mapped_column(Text)


class PipelineStep(Base):
    __tablename__ = "pipeline_step"
    __table_args__ = (
        UniqueConstraint("run_id", "name", name="uq_pipeline_step_run_name"),
        Index("ix_pipeline_step_status_lease", "status", "lease_expires"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    run_id: Mapped[str] = mapped_column(ForeignKey("pipeline_run.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="PENDING")
    reason: Mapped[str | None] = mapped_column(Text)
    executor: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer, default=0)  # 0 until it first starts
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    deadline_at: Mapped[datetime | None] = mapped_column()  # this attempt's timeoutSeconds
    next_attempt_at: Mapped[datetime | None] = mapped_column()  # a retry's backoff
    lease_owner: Mapped[str | None] = mapped_column(String(256))
    lease_expires: Mapped[datetime | None] = mapped_column()
    handle: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    outputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    kept_from: Mapped[str | None] = mapped_column(String(36))
    log: Mapped[str | None] = mapped_column(Text)  # the last attempt's log, once it ended


class PipelineEvent(Base):
    """A run or step event; the sequence id orders them for server-sent events (`Last-Event-ID`)."""

    __tablename__ = "pipeline_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36), index=True)
    type: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(8))
    job: Mapped[str | None] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PipelineDelivery(Base):
    """One event to one webhook or plugin notifier: sent at least once, retried with backoff."""

    __tablename__ = "pipeline_delivery"
    __table_args__ = (Index("ix_pipeline_delivery_pending", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("pipeline_event.id", ondelete="CASCADE"), index=True)
    subscription: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(256))
    lease_expires: Mapped[datetime | None] = mapped_column()


class PipelineDefinition(Base):
    """A named pipeline; every save is a new version (1, 2, ...), runs name the version they used."""

    __tablename__ = "pipeline_definition"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_pipeline_definition_name_version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63), index=True)
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PipelineSchedule(Base):
    """A cron schedule of a named pipeline (Argo CronWorkflow's fields)."""

    __tablename__ = "pipeline_schedule"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    pipeline_name: Mapped[str] = mapped_column(String(63))
    pipeline_version: Mapped[int | None] = mapped_column(Integer)  # None: the latest at each tick
    cron: Mapped[str] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    concurrency_policy: Mapped[str] = mapped_column(String(16), default="Allow")  # Allow | Forbid | Replace
    starting_deadline_seconds: Mapped[float | None] = mapped_column(Float)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    owner: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The last tick acted on (started, forbidden or missed): the next one is looked for after it.
    last_tick_at: Mapped[datetime | None] = mapped_column()
    last_run_id: Mapped[str | None] = mapped_column(String(36))
    last_result: Mapped[str | None] = mapped_column(Text)
