"""Call history of jobs: what the gateways counted, per minute, for the dashboard's charts.

Each gateway reports its per-minute totals (`trackside.gateway.call_reporter`); they are kept for a
day and an hour, summed across gateways when read, and turned into requests per minute, p50/p99
latency (interpolated inside the gateway's 1 ms doubling histogram buckets, as Prometheus'
`histogram_quantile` does) and error rate (share of responses with status 500 or more).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from trackside.auth.scopes import Scope
from trackside.auth.subjects import Caller
from trackside.errors import InvalidInput
from trackside.gateway.metrics import BUCKETS
from trackside.lifecycle import job_versions
from trackside.lifecycle.access import require_job, session_with_scope
from trackside.store.call_models import JobCallMinute
from trackside.store.database import Database

RETENTION_S = 25 * 3600
# window name -> (length in seconds, step in seconds)
WINDOWS: dict[str, tuple[int, int]] = {"hour": (3600, 60), "day": (86400, 600)}


@dataclass(frozen=True)
class MinuteCounts:
    job_name: str
    job_version: str
    minute: int
    requests: int
    errors: int
    seconds_sum: float
    latency_buckets: list[int]


def record(session: Session, gateway_id: str, minutes: Sequence[MinuteCounts], now: float | None = None) -> int:
    """Store one gateway's totals (each replaces that gateway's row for the minute); returns rows written."""
    now = time.time() if now is None else now
    oldest = int(now) - RETENTION_S
    written = 0
    for counts in minutes:
        if counts.minute % 60 or counts.minute < oldest or counts.minute > now + 120:
            continue  # not a minute boundary, or outside what anyone can chart: ignored
        if len(counts.latency_buckets) != len(BUCKETS) + 1:
            got = len(counts.latency_buckets)
            raise InvalidInput(f"latency_buckets: expected {len(BUCKETS) + 1} counts, got {got}")
        session.merge(
            JobCallMinute(
                gateway_id=gateway_id,
                job_name=counts.job_name,
                job_version=counts.job_version,
                minute=counts.minute,
                requests=counts.requests,
                errors=counts.errors,
                seconds_sum=counts.seconds_sum,
                latency_buckets=list(counts.latency_buckets),
            )
        )
        written += 1
    session.execute(delete(JobCallMinute).where(JobCallMinute.minute < oldest))
    return written


def quantile(q: float, buckets: Sequence[int]) -> float | None:
    """The q-quantile in seconds of a histogram with the gateway's bucket bounds (last slot +Inf)."""
    total = sum(buckets)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0
    for index, count in enumerate(buckets):
        if count and cumulative + count >= rank:
            if index >= len(BUCKETS):
                return BUCKETS[-1]
            lower = BUCKETS[index - 1] if index else 0.0
            return lower + (BUCKETS[index] - lower) * ((rank - cumulative) / count)
        cumulative += count
    return BUCKETS[-1]


def series(
    session: Session, job_name: str, job_version: str, window: str, now: float | None = None
) -> dict[str, object]:
    """Points of one window (`hour`: per minute, `day`: per 10 minutes), oldest first, empty ones included."""
    if window not in WINDOWS:
        raise InvalidInput(f"window: choose one of {', '.join(WINDOWS)}, got {window!r}")
    length, step = WINDOWS[window]
    now = time.time() if now is None else now
    end = int(now) // step * step + step  # the current, partial step is included
    start = end - length
    rows = session.execute(
        select(
            JobCallMinute.minute,
            JobCallMinute.requests,
            JobCallMinute.errors,
            JobCallMinute.seconds_sum,
            JobCallMinute.latency_buckets,
        ).where(
            JobCallMinute.job_name == job_name,
            JobCallMinute.job_version == job_version,
            JobCallMinute.minute >= start,
        )
    ).all()
    slots = length // step
    requests = [0] * slots
    errors = [0] * slots
    histograms = [[0] * (len(BUCKETS) + 1) for _ in range(slots)]
    for minute, count, failed, _seconds, buckets in rows:
        slot = (minute - start) // step
        if 0 <= slot < slots:
            requests[slot] += count
            errors[slot] += failed
            histogram = histograms[slot]
            for i, value in enumerate(buckets or []):
                if i < len(histogram):
                    histogram[i] += int(value)
    per_minute = step / 60
    points = []
    for slot in range(slots):
        answered = sum(histograms[slot])
        p50, p99 = quantile(0.5, histograms[slot]), quantile(0.99, histograms[slot])
        points.append(
            {
                "time": start + slot * step,
                "requests_per_minute": round(requests[slot] / per_minute, 3),
                "p50_ms": round(p50 * 1000, 3) if p50 is not None else None,
                "p99_ms": round(p99 * 1000, 3) if p99 is not None else None,
                "error_rate": round(errors[slot] / answered, 4) if answered else None,
            }
        )
    return {
        "job_name": job_name,
        "job_version": job_version,
        "window": window,
        "step_s": step,
        "total_requests": sum(requests),
        "total_errors": sum(errors),
        "points": points,
    }


def report(db: Database, caller: Caller, gateway_id: str, minutes: Sequence[MinuteCounts]) -> int:
    """A gateway's running per-minute totals (its own token, scope call_admin_api); rows written."""
    with session_with_scope(db, caller, Scope.CALL_ADMIN_API) as session:
        return record(session, gateway_id, minutes)


def job_series(db: Database, caller: Caller, name: str, version: str, window: str) -> dict[str, object]:
    """`series` of a job the caller may read (a version alias resolved)."""
    with db.session() as session:
        job = job_versions.get_job(session, name, version)
        require_job(session, caller, Scope.READ_JOB, job)
        return series(session, job.name, job.version, window)
