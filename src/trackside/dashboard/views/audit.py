"""Audit log: events filtered by "related to me", job family and job version, paged."""

from __future__ import annotations

from starlette.responses import Response

from trackside.dashboard.views import get
from trackside.dashboard.web import Page

PER_PAGE = 50


@get("/audit")
async def audit(page: Page) -> Response:
    params = page.request.query_params
    filters = {
        "job_name": params.get("job_name", "").strip(),
        "job_version": params.get("job_version", "").strip(),
        "related_to_me": params.get("related_to_me") == "1",
    }
    try:
        number = max(1, int(params.get("page", "1")))
    except ValueError:
        number = 1
    data = await page.api.get(
        "/audit/page",
        job_name=filters["job_name"],
        job_version=filters["job_version"],
        related_to_me=filters["related_to_me"] or None,
        offset=(number - 1) * PER_PAGE,
        limit=PER_PAGE,
    )
    return page.render("audit.html", data=data, filters=filters, number=number)
