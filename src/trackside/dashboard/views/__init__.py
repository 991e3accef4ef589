"""The dashboard's pages, one module per area; each registers its handlers with `get`/`post`."""

from __future__ import annotations

from collections.abc import Callable

from trackside.dashboard.web import Handler

_ROUTES: list[tuple[str, str, Handler, bool, bool]] = []


def _register(method: str, path: str, login: bool, staff: bool) -> Callable[[Handler], Handler]:
    def decorate(handler: Handler) -> Handler:
        _ROUTES.append((method, path, handler, login, staff))
        return handler

    return decorate


def get(path: str, *, login: bool = True, staff: bool = False) -> Callable[[Handler], Handler]:
    return _register("GET", path, login, staff)


def post(path: str, *, login: bool = True, staff: bool = False) -> Callable[[Handler], Handler]:
    return _register("POST", path, login, staff)


def all_routes() -> list[tuple[str, str, Handler, bool, bool]]:
    from trackside.dashboard.views import (  # noqa: F401 - importing registers the pages
        account,
        admin,
        audit,
        deployments,
        docs,
        graph,
        jobs,
        pipelines,
        portfolio,
    )

    return list(_ROUTES)
