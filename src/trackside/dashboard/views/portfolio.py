"""Portfolio: every job with its purge score and reasons, a filter above each column (Racetrack's
operators, evaluated by the API), sorting, paging, and delete from the table."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from trackside.dashboard.views import get
from trackside.dashboard.web import FormState, Page

PER_PAGE = 100
COLUMNS = {
    "name": "Name",
    "version": "Version",
    "status": "Status",
    "purge_score": "Purge score",
    "purge_reasons": "Purge reasons",
    "deployed_by": "Deployed by",
    "owner_email": "Owner",
    "job_type": "Job type",
    "infrastructure_target": "Target",
    "update_time_days_ago": "Updated (days ago)",
    "last_call_time_days_ago": "Last call (days ago)",
}


@get("/portfolio")
async def portfolio(page: Page) -> Response:
    params = page.request.query_params
    filters = {c: params.get(f"filter_{c}", "") for c in COLUMNS}
    sort = params.get("sort", "-purge_score")
    if sort.lstrip("-") not in COLUMNS:
        sort = "-purge_score"
    try:
        number = max(1, int(params.get("page", "1")))
    except ValueError:
        number = 1
    state = FormState({f"filter_{c}": v for c, v in filters.items()})
    query: dict[str, Any] = {f"filter_{c}": v for c, v in filters.items() if v}
    data = await page.attempt(
        page.api.get("/jobs/portfolio", sort=sort, offset=(number - 1) * PER_PAGE, limit=PER_PAGE, **query),
        state,
        [f"filter_{c}" for c in COLUMNS],
    )
    return page.render(
        "portfolio.html",
        status_code=200 if data is not None else 400,
        data=data,
        columns=COLUMNS,
        state=state,
        sort=sort,
        number=number,
        per_page=PER_PAGE,
        query=query,
    )
