"""Request counters and the Prometheus text exposition, written by hand.

Counters are plain ints updated on the event loop thread only (responses are finished there), so
the hot path takes no lock. Names follow Racetrack's runner (prometheus_client adds `_total` to
counters, so do we).
"""

from __future__ import annotations

import math
import re
import sys
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0)
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class _Histogram:
    __slots__ = ("counts", "total", "count")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.count = 0


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Metrics:
    def __init__(self) -> None:
        self.requests_started = 0
        self.requests_done = 0
        self.last_call_timestamp = 0.0
        self.endpoint_started: dict[str, int] = {}
        self.internal_errors: dict[str, int] = {}
        self.durations: dict[str, _Histogram] = {}

    def started(self, endpoint: str) -> None:
        self.requests_started += 1
        self.endpoint_started[endpoint] = self.endpoint_started.get(endpoint, 0) + 1

    def done(self, endpoint: str, seconds: float, status: int) -> None:
        self.requests_done += 1
        self.last_call_timestamp = time.time()
        hist = self.durations.get(endpoint)
        if hist is None:
            hist = self.durations[endpoint] = _Histogram()
        hist.counts[bisect_left(BUCKETS, seconds)] += 1
        hist.total += seconds
        hist.count += 1
        if status >= 500:
            self.internal_errors[endpoint] = self.internal_errors.get(endpoint, 0) + 1

    def render(self, user_metrics: Callable[[], Any] | None = None) -> str:
        out: list[str] = []
        add = out.append
        add("# HELP requests_started_total Total number of started requests calling the job")
        add("# TYPE requests_started_total counter")
        add(f"requests_started_total {self.requests_started}")
        add("# HELP requests_done_total Total number of finished requests calling the job")
        add("# TYPE requests_done_total counter")
        add(f"requests_done_total {self.requests_done}")
        add("# HELP endpoint_requests_started_total Requests started, per endpoint")
        add("# TYPE endpoint_requests_started_total counter")
        for ep, n in sorted(self.endpoint_started.items()):
            add(f'endpoint_requests_started_total{{endpoint="{_escape(ep)}"}} {n}')
        add("# HELP request_internal_errors_total Requests answered with a 5xx status, per endpoint")
        add("# TYPE request_internal_errors_total counter")
        for ep, n in sorted(self.internal_errors.items()):
            add(f'request_internal_errors_total{{endpoint="{_escape(ep)}"}} {n}')
        add("# HELP request_duration Request duration in seconds, per endpoint")
        add("# TYPE request_duration histogram")
        for ep, hist in sorted(self.durations.items()):
            label = _escape(ep)
            cumulative = 0
            for bound, n in zip(BUCKETS, hist.counts, strict=False):
                cumulative += n
                add(f'request_duration_bucket{{endpoint="{label}",le="{bound}"}} {cumulative}')
            add(f'request_duration_bucket{{endpoint="{label}",le="+Inf"}} {hist.count}')
            add(f'request_duration_sum{{endpoint="{label}"}} {_num(hist.total)}')
            add(f'request_duration_count{{endpoint="{label}"}} {hist.count}')
        add("# HELP last_call_timestamp Unix time of the last finished call")
        add("# TYPE last_call_timestamp gauge")
        add(f"last_call_timestamp {_num(self.last_call_timestamp)}")
        if user_metrics is not None:
            out.extend(render_user_metrics(user_metrics))
        return "\n".join(out) + "\n"


def render_user_metrics(source: Callable[[], Any]) -> list[str]:
    """Gauges from the job's `metrics()`; a bad entry is skipped with a comment saying why."""
    try:
        entries = source()
    except Exception as exc:
        print(f"job metrics() failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return [f"# job metrics() failed: {_escape(type(exc).__name__)}: {_escape(str(exc))}"]
    lines: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries or []):
        get = entry.get if isinstance(entry, dict) else (lambda key, default=None, e=entry: getattr(e, key, default))
        name = get("name")
        value = get("value")
        if not isinstance(name, str) or not _NAME.match(name):
            lines.append(f"# skipped metrics()[{index}]: invalid metric name {_escape(repr(name))}")
            continue
        try:
            number = value if isinstance(value, (int, bool)) else float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            lines.append(f"# skipped metrics()[{index}] {name}: value {_escape(repr(value))} is not a number")
            continue
        labels = get("labels") or {}
        label_text = ""
        if labels:
            bad = [k for k in labels if not isinstance(k, str) or not _LABEL.match(k)]
            if bad:
                lines.append(f"# skipped metrics()[{index}] {name}: invalid label names {_escape(repr(bad))}")
                continue
            label_text = "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"
        if name not in seen:
            seen.add(name)
            description = get("description")
            if description:
                lines.append(f"# HELP {name} {_escape(str(description))}")
            lines.append(f"# TYPE {name} gauge")
        lines.append(f"{name}{label_text} {_num(number)}")
    return lines
