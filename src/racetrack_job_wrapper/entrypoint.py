"""`JobEntrypoint`: an optional base class for job classes, as in Racetrack's wrapper.

A job class needs no base class; those written for Racetrack sometimes subclass this one. Every
method is optional here (Racetrack's `perform` is abstract, Trackside serves classes without it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

WsgiApplication = Callable[[Mapping[str, object], Callable[..., Any]], Iterable[bytes]]


class JobEntrypoint:
    """Methods a job class may define; the runtime finds them by name."""

    def webview_app(self, base_url: str) -> WsgiApplication | None:
        """A WSGI or ASGI app serving pages under `base_url` (`.../api/v1/webview`); None for none."""
        return None

    def docs_input_examples(self) -> dict[str, dict[str, Any]]:
        """Example inputs per endpoint path (`'/perform'`, `'/explain'`, ...), shown in the API docs."""
        return {}

    def docs_input_example(self) -> dict[str, Any]:
        """Example input of `perform`."""
        return {}

    def auxiliary_endpoints(self) -> dict[str, Callable[..., Any]]:
        """More POST endpoints: `{'/explain': self.explain}` is served at `/api/v1/explain`."""
        return {}

    def static_endpoints(self) -> dict[str, tuple[str, ...] | str]:
        """Files served by GET: `{'/manifest': ('job.yaml', 'application/x-yaml')}`."""
        return {}

    def metrics(self) -> list[dict[str, Any]]:
        """Prometheus gauges: `[{'name', 'value', 'description'?, 'labels'?}]`."""
        return []
