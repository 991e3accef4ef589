"""Job views for the dashboard and other clients: `/jobs/table`, `/jobs/portfolio`, `/jobs/stamp`,
and Racetrack's `/job/portfolio` (every readable job with its purge score).

Each answers only with the jobs the caller may read (read_job), one page at a time.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel

from trackside.auth.subjects import Caller
from trackside.lifecycle import job_views
from trackside.lifecycle.api.bounds import Offset
from trackside.lifecycle.api.deps import get_caller, get_context
from trackside.lifecycle.wiring import LifecycleContext

router = APIRouter()


class JobRowModel(BaseModel):
    id: str
    name: str
    version: str
    status: str
    create_time: int
    update_time: int
    last_call_time: int | None
    deployed_by: str | None
    owner_email: str | None
    job_type: str | None
    job_type_version: str | None
    infrastructure_target: str | None
    error: str | None
    replicas: int


class PortfolioItem(JobRowModel):
    purge_score: float
    purge_reasons: list[str]
    purge_newer_versions: int
    update_time_days_ago: float | None
    last_call_time_days_ago: float | None


class FamilyModel(BaseModel):
    name: str
    jobs: list[JobRowModel]


class JobsTable(BaseModel):
    total_jobs: int
    matched_jobs: int
    matched_families: int
    offset: int
    limit: int
    families: list[FamilyModel]


class PortfolioPage(BaseModel):
    columns: list[str]
    total: int
    matched: int
    offset: int
    limit: int
    items: list[PortfolioItem]


class Stamp(BaseModel):
    stamp: str


@router.get("/jobs/table")
def jobs_table(
    name: str = "",
    version: str = "",
    owner: str = "",
    job_type: str = "",
    target: str = "",
    status: str = "",
    sort: str = Query("name", description="name, deploy (latest first) or status (faulty first)"),
    offset: Offset = 0,
    limit: int = Query(50, ge=1, le=1000),
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> JobsTable:
    """Readable jobs grouped by family, newest version first; filters are case-insensitive substrings."""
    filters = {"name": name, "version": version, "owner": owner, "job_type": job_type, "target": target}
    filters["status"] = status
    data = job_views.jobs_table(job_views.readable_rows(context.db, caller), filters, sort, offset, limit)
    return JobsTable.model_validate(data)


@router.get("/jobs/portfolio")
def portfolio_page(
    request: Request,
    sort: str = Query("-purge_score", description="a column; prefix '-' for descending"),
    offset: Offset = 0,
    limit: int = Query(100, ge=1, le=1000),
    caller: Caller = Depends(get_caller),
    context: LifecycleContext = Depends(get_context),
) -> PortfolioPage:
    """The portfolio, one page; `filter_<column>=<expression>` filters a column (see table_filter)."""
    filters = {k[len("filter_") :]: v for k, v in request.query_params.items() if k.startswith("filter_")}
    items = job_views.cached_portfolio_items(job_views.readable_rows(context.db, caller))
    return PortfolioPage.model_validate(job_views.portfolio_page(items, filters, sort, offset, limit))


@router.get("/job/portfolio", response_model=list[PortfolioItem])
def portfolio(
    caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)
) -> list[dict[str, Any]]:
    """Racetrack's portfolio: every readable job with purge_score, purge_reasons and ages."""
    return job_views.portfolio_items(job_views.readable_rows(context.db, caller))


@router.get("/jobs/stamp")
def jobs_stamp(_caller: Caller = Depends(get_caller), context: LifecycleContext = Depends(get_context)) -> Stamp:
    """Changes whenever any job changes: clients poll it to refresh their views."""
    return Stamp(stamp=job_views.stamp(context.db))
