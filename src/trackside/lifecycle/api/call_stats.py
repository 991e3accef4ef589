"""`/calls/report` (gateways send their per-minute call counts) and `/job/{n}/{v}/calls` (the charts' data)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from trackside.auth.subjects import Caller
from trackside.lifecycle import call_stats
from trackside.lifecycle.api.bounds import Count, Seconds, UnixTime
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()


class MinuteReport(BaseModel):
    job_name: str = Field(min_length=1, max_length=128)
    job_version: str = Field(min_length=1, max_length=128)
    minute: UnixTime = Field(description="unix seconds, a multiple of 60")
    requests: Count
    errors: Count
    seconds_sum: Seconds
    latency_buckets: list[Count] = Field(max_length=64)


class CallReport(BaseModel):
    gateway_id: str = Field(min_length=1, max_length=64)
    minutes: list[MinuteReport] = Field(max_length=100_000)


class CallReportAnswer(BaseModel):
    written: int


class CallPoint(BaseModel):
    time: int
    requests_per_minute: float
    p50_ms: float | None
    p99_ms: float | None
    error_rate: float | None


class CallSeries(BaseModel):
    job_name: str
    job_version: str
    window: str
    step_s: int
    total_requests: int
    total_errors: int
    points: list[CallPoint]


@router.post("/calls/report")
def report_calls(
    body: CallReport, caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> CallReportAnswer:
    """A gateway's running per-minute totals (its own token, scope call_admin_api)."""
    minutes = [call_stats.MinuteCounts(**m.model_dump()) for m in body.minutes]
    return CallReportAnswer(written=call_stats.report(context.db, caller, body.gateway_id, minutes))


@router.get("/job/{name}/{version}/calls")
def job_calls(
    name: str,
    version: str,
    window: str = Query("hour", description="hour (per minute) or day (per 10 minutes)"),
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> CallSeries:
    return CallSeries.model_validate(call_stats.job_series(context.db, caller, name, version, window))
