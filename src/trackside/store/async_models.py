"""Async job calls (`/pub/async/...`): a call the gateway runs in the background, and its result.

A gateway records the call when it starts it and writes the result when the job answers, through the
lifecycle API (`/job/async/call`); any gateway can then hand the result out, once, even after the one
that ran it restarted. Caller tokens are never stored: a call runs with the token it came with, in the
memory of the gateway that started it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from trackside.store.base import Base, utcnow


class AsyncJobCall(Base):
    __tablename__ = "async_job_call"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # ongoing | completed | failed
    job_name: Mapped[str] = mapped_column(String(128))
    job_version: Mapped[str] = mapped_column(String(128))
    job_path: Mapped[str] = mapped_column(Text)
    http_method: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    ended_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    gateway: Mapped[str] = mapped_column(String(256))  # the base URL of the gateway running it
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
