"""Per-minute call counts of each job version, as each gateway reports them.

One row per (gateway, job, version, minute): a gateway rewrites its own rows with its running
totals for that minute, so a repeated report never counts twice, and readers sum the gateways.
"""

from __future__ import annotations

from sqlalchemy import JSON, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from trackside.store.base import Base


class JobCallMinute(Base):
    __tablename__ = "job_call_minute"

    gateway_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    job_version: Mapped[str] = mapped_column(String(128), primary_key=True)
    minute: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)  # unix seconds, a multiple of 60
    requests: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)  # responses with status >= 500
    seconds_sum: Mapped[float] = mapped_column(Float, default=0.0)
    # Counts per latency bucket (trackside.gateway.metrics.BUCKETS, then +Inf).
    latency_buckets: Mapped[list[int]] = mapped_column(JSON, default=list)
