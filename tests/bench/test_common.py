"""The bench never reports a number it did not measure: wrk output that shows a failure is an error."""

from __future__ import annotations

import pytest
from bench.common import BenchError, Profile, _parse_wrk

GOOD = """\
Running 1s test @ http://127.0.0.1:8765/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.40ms    2.95ms  20.25ms   67.46%
    Req/Sec   421.00     13.04   444.00     80.00%
  Latency Distribution
     50%  950.00us
     75%   11.18ms
     90%   13.06ms
     99%    1.20s
  419 requests in 1.00s, 0.89MB read
Requests/sec:    418.64
Transfer/sec:      0.89MB
"""
URL = "http://127.0.0.1:8765/"


def test_wrk_output_gives_rps_percentiles_in_ms_and_cpu_per_request() -> None:
    result = _parse_wrk(GOOD, URL, before={"server": 10.0}, after={"server": 10.419})

    assert result.requests == 419
    assert result.rps == 418.64
    assert result.p50_ms == pytest.approx(0.95)
    assert result.p99_ms == pytest.approx(1200.0)
    assert result.cpu_us_per_request["server"] == pytest.approx(1000.0)


def test_non_2xx_answers_make_the_run_a_failed_measurement() -> None:
    out = GOOD.replace("Requests/sec", "  Non-2xx or 3xx responses: 12\nRequests/sec")

    with pytest.raises(BenchError, match="12 requests .* failed"):
        _parse_wrk(out, URL, {}, {})


def test_socket_errors_make_the_run_a_failed_measurement() -> None:
    out = GOOD.replace("Requests/sec", "  Socket errors: connect 0, read 3, write 0, timeout 0\nRequests/sec")

    with pytest.raises(BenchError, match="socket errors"):
        _parse_wrk(out, URL, {}, {})


def test_a_run_that_completed_no_request_is_a_failed_measurement() -> None:
    with pytest.raises(BenchError, match="no request"):
        _parse_wrk(GOOD.replace("419 requests", "0 requests"), URL, {}, {})


def test_output_without_a_latency_distribution_is_a_failed_measurement() -> None:
    out = "\n".join(line for line in GOOD.splitlines() if "%" not in line)

    with pytest.raises(BenchError, match="lacks"):
        _parse_wrk(out, URL, {}, {})


def test_the_quick_profile_measures_less_of_everything_than_the_full_one() -> None:
    quick, full = Profile.make(True), Profile.make(False)

    assert quick.rounds < full.rounds
    assert quick.store_jobs < full.store_jobs
    assert full.store_jobs == 10_000 and full.concurrent_deploys == 50  # the figures
