"""The store's tables: what should exist (jobs, families), what happened (deployments, deleted jobs).

Only the lifecycle reads and writes these; other components ask the lifecycle API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from trackside.store.base import Base, new_id, utcnow


class JobFamily(Base):
    __tablename__ = "job_family"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    jobs: Mapped[list[Job]] = relationship(back_populates="family")


class Job(Base):
    __tablename__ = "job"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_job_name_version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    family_id: Mapped[str] = mapped_column(ForeignKey("job_family.id"), index=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32), default="starting")
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    update_time: Mapped[datetime] = mapped_column(default=utcnow)
    manifest: Mapped[str] = mapped_column(Text)  # YAML, as submitted (merged)
    internal_name: Mapped[str | None] = mapped_column(String(256))
    error: Mapped[str | None] = mapped_column(Text)
    notice: Mapped[str | None] = mapped_column(Text)
    image_tag: Mapped[str | None] = mapped_column(String(128))
    deployed_by: Mapped[str | None] = mapped_column(String(256))
    last_call_time: Mapped[datetime | None] = mapped_column()
    infrastructure_target: Mapped[str | None] = mapped_column(String(128))
    replica_internal_names: Mapped[list[str]] = mapped_column(default=list)
    job_type_version: Mapped[str | None] = mapped_column(String(128))
    infrastructure_stats: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What the serving build was built from: a git commit, or `sha256:...` of an uploaded context.
    source_version: Mapped[str | None] = mapped_column(String(80))

    family: Mapped[JobFamily] = relationship(back_populates="jobs")


class Deployment(Base):
    """One deploy, redeploy, reprovision or move of a job version, as it runs and after it ended.

    While in progress it is owned by the lifecycle worker running it (`owner`), under a lease it renews
    (`lease_expires_at`); at most one deployment of a version is in progress at a time (a unique index).
    """

    __tablename__ = "deployment"
    __table_args__ = (
        Index(
            "uq_deployment_in_progress",
            "job_name",
            "job_version",
            unique=True,
            sqlite_where=text("status = 'in_progress'"),
            postgresql_where=text("status = 'in_progress'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    status: Mapped[str] = mapped_column(String(32), default="in_progress", index=True)
    create_time: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    update_time: Mapped[datetime] = mapped_column(default=utcnow)
    manifest: Mapped[str] = mapped_column(Text)
    job_name: Mapped[str] = mapped_column(String(128), index=True)
    job_version: Mapped[str] = mapped_column(String(128))
    deployed_by: Mapped[str | None] = mapped_column(String(256))
    error: Mapped[str | None] = mapped_column(Text)
    build_logs: Mapped[str] = mapped_column(Text, default="")
    phase: Mapped[str | None] = mapped_column(String(128))
    image_name: Mapped[str | None] = mapped_column(String(512))
    infrastructure_target: Mapped[str | None] = mapped_column(String(128))
    warnings: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(32), default="deploy")  # deploy | redeploy | reprovision | move
    tag: Mapped[str | None] = mapped_column(String(160))  # the deployment tag its workloads run under
    step: Mapped[str | None] = mapped_column(String(32))  # the pipeline step it is at (lifecycle/pipeline.py)
    previous_tag: Mapped[str | None] = mapped_column(String(160))  # what served the version before it
    previous_target: Mapped[str | None] = mapped_column(String(128))
    owner: Mapped[str | None] = mapped_column(String(256))  # the worker running it (lifecycle/leases.py)
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    source_version: Mapped[str | None] = mapped_column(String(80))  # see Job.source_version


class TrashJob(Base):
    """A deleted job version, kept so its history stays visible and its version is not re-claimed."""

    __tablename__ = "trash_job"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(32))
    create_time: Mapped[datetime] = mapped_column()
    update_time: Mapped[datetime] = mapped_column()
    delete_time: Mapped[datetime] = mapped_column(default=utcnow)
    manifest: Mapped[str] = mapped_column(Text)
    image_tag: Mapped[str | None] = mapped_column(String(128))
    deployed_by: Mapped[str | None] = mapped_column(String(256))
    deleted_by: Mapped[str | None] = mapped_column(String(256))
    infrastructure_target: Mapped[str | None] = mapped_column(String(128))
    job_type_version: Mapped[str | None] = mapped_column(String(128))
    age_days: Mapped[int] = mapped_column(Integer, default=0)


class Lease(Base):
    """A role only one process may hold at a time (the supervisor's), held until `expires_at` unless renewed."""

    __tablename__ = "lease"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    owner: Mapped[str] = mapped_column(String(256))
    expires_at: Mapped[datetime] = mapped_column()


class Setting(Base):
    __tablename__ = "setting"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
