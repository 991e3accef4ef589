"""Permissions graph: ESCs, job families and users as nodes, grants as edges (drawn with cytoscape)."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from trackside.dashboard.views import get
from trackside.dashboard.web import Page


@get("/graph")
async def graph(page: Page) -> Response:
    return page.render("graph.html")


@get("/graph/data")
async def graph_data(page: Page) -> Response:
    return JSONResponse(await page.api.get("/job/graph"))
