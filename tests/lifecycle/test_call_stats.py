"""Call history: per-minute counts from several gateways, summed into the charts' points."""

from __future__ import annotations

import pytest

from trackside.errors import InvalidInput
from trackside.gateway.call_reporter import CallReporter
from trackside.gateway.metrics import BUCKETS, GatewayMetrics
from trackside.lifecycle import call_stats
from trackside.store.database import Database

pytestmark = pytest.mark.store

NOW = 1_800_000_000.0  # a multiple of 60
MINUTE = int(NOW) // 60 * 60


def buckets(**at_ms: int) -> list[int]:
    """Counts placed in the bucket whose bound is the given number of milliseconds."""
    counts = [0] * (len(BUCKETS) + 1)
    for key, count in at_ms.items():
        counts[BUCKETS.index(int(key[1:]) / 1000)] += count
    return counts


def counts(minute: int, requests: int, errors: int, histogram: list[int]) -> call_stats.MinuteCounts:
    return call_stats.MinuteCounts("adder", "0.0.1", minute, requests, errors, 0.0, histogram)


def test_quantiles_interpolate_inside_the_histogram_buckets() -> None:
    histogram = buckets(b1=50, b2=50)
    assert call_stats.quantile(0.5, histogram) == pytest.approx(0.001)
    assert call_stats.quantile(0.99, histogram) == pytest.approx(0.001 + 0.001 * 0.98)
    assert call_stats.quantile(0.5, [0] * (len(BUCKETS) + 1)) is None


def test_two_gateways_add_up_and_a_resent_report_does_not_count_twice(db: Database) -> None:
    with db.session() as session:
        call_stats.record(session, "gw-1", [counts(MINUTE, 10, 1, buckets(b1=10))], now=NOW)
        call_stats.record(session, "gw-1", [counts(MINUTE, 10, 1, buckets(b1=10))], now=NOW)  # resent
        call_stats.record(session, "gw-2", [counts(MINUTE, 30, 2, buckets(b4=30))], now=NOW)
        call_stats.record(session, "gw-2", [counts(MINUTE - 600, 5, 0, buckets(b1=5))], now=NOW)
    with db.session() as session:
        hour = call_stats.series(session, "adder", "0.0.1", "hour", now=NOW)
        day = call_stats.series(session, "adder", "0.0.1", "day", now=NOW)
    assert hour["total_requests"] == 45 and hour["total_errors"] == 3
    last = hour["points"][-1]
    assert last["time"] == MINUTE and last["requests_per_minute"] == 40
    assert last["error_rate"] == pytest.approx(3 / 40)
    assert 1 <= last["p50_ms"] <= 4 and 2 <= last["p99_ms"] <= 4
    assert len(hour["points"]) == 60 and len(day["points"]) == 144
    assert day["total_requests"] == 45
    assert hour["points"][0]["p50_ms"] is None  # a minute nobody called: a gap, not a zero latency


def test_a_report_with_the_wrong_bucket_count_is_refused(db: Database) -> None:
    with db.session() as session, pytest.raises(InvalidInput, match="latency_buckets"):
        call_stats.record(session, "gw", [counts(MINUTE, 1, 0, [1])], now=NOW)


def test_the_reporter_sends_what_the_counters_gained_per_minute() -> None:
    metrics = GatewayMetrics()
    reporter = CallReporter(metrics, "http://127.0.0.1:9/lifecycle", "token", interval=1)
    stats = metrics.job("adder", "0.0.1")
    for status in (200, 200, 502):
        stats.observe(status, 0.003)
    reporter.sample(now=NOW)
    stats.observe(200, 0.003)
    reporter.sample(now=NOW + 61)
    sent = {m["minute"]: m for m in reporter.pending()}
    assert sent[MINUTE]["requests"] == 3 and sent[MINUTE]["errors"] == 1
    assert sent[MINUTE + 60]["requests"] == 1 and sent[MINUTE + 60]["errors"] == 0
    assert sum(sent[MINUTE]["latency_buckets"]) == 3  # type: ignore[arg-type]
