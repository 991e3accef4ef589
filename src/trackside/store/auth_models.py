"""The store's governance tables: users, external service consumers, auth subjects, tokens,
permissions, public endpoint requests and the audit log (docs/auth.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from trackside.store.base import Base, new_id, utcnow


class User(Base):
    __tablename__ = "auth_user"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    date_joined: Mapped[datetime] = mapped_column(default=utcnow)
    last_login: Mapped[datetime | None] = mapped_column()


class Esc(Base):
    """An external service consumer: a program outside the platform that calls jobs."""

    __tablename__ = "esc"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(256))


class AuthSubject(Base):
    """Whoever holds tokens and permissions: exactly one of a user, an ESC or a job family."""

    __tablename__ = "auth_subject"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("auth_user.id", ondelete="CASCADE"), unique=True)
    esc_id: Mapped[str | None] = mapped_column(ForeignKey("esc.id", ondelete="CASCADE"), unique=True)
    job_family_id: Mapped[str | None] = mapped_column(ForeignKey("job_family.id", ondelete="CASCADE"), unique=True)


class AuthToken(Base):
    __tablename__ = "auth_token"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    auth_subject_id: Mapped[str] = mapped_column(ForeignKey("auth_subject.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(Text)
    # sha256 of the token: how a presented token finds its row without comparing secrets in SQL.
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    expiry_time: Mapped[datetime | None] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    last_use_time: Mapped[datetime | None] = mapped_column()


class AuthResourcePermission(Base):
    """One allowance: `scope` for `subject` on a family, a job version and an endpoint (empty = any)."""

    __tablename__ = "auth_resource_permission"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    auth_subject_id: Mapped[str] = mapped_column(ForeignKey("auth_subject.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(32))
    job_family_id: Mapped[str | None] = mapped_column(ForeignKey("job_family.id", ondelete="CASCADE"))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"))
    endpoint: Mapped[str | None] = mapped_column(String(512))


class PublicEndpointRequest(Base):
    """A job's wish (manifest `public_endpoints`) to serve a path without a token; staff approve it."""

    __tablename__ = "public_endpoint_request"
    __table_args__ = (UniqueConstraint("job_id", "endpoint", name="uq_public_endpoint_job_endpoint"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(512))
    active: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditLogEvent(Base):
    __tablename__ = "audit_log_event"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    version: Mapped[int] = mapped_column(Integer, default=1)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    username_executor: Mapped[str | None] = mapped_column(String(256), index=True)
    username_subject: Mapped[str | None] = mapped_column(String(256), index=True)
    job_name: Mapped[str | None] = mapped_column(String(128), index=True)
    job_version: Mapped[str | None] = mapped_column(String(128))
