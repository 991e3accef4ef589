"""The gateway's Prometheus metrics, kept as plain dicts and rendered by hand.

prometheus_client takes a lock and walks label objects on every increment (a few microseconds); the gateway counts
several things per proxied call on its one event loop, so plain dict increments with no locks cost almost nothing.
Names follow Racetrack's Pub (docs/architecture.md, "Compatibility contracts") with Prometheus' `_total`/`_seconds`
suffixes.
"""

from __future__ import annotations

from bisect import bisect_left

# 1 ms doubling, 21 buckets (1 ms .. ~17.5 min), as Racetrack's pub_job_call_response_time_histogram.
BUCKETS: tuple[float, ...] = tuple(0.001 * 2**i for i in range(21))

JobKey = tuple[str, str]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    return ",".join(f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True))


class JobStats:
    """Counters of one job version; the gateway keeps a reference per call to skip lookups."""

    __slots__ = ("requests", "codes", "errors", "buckets", "seconds_sum", "seconds_count")

    def __init__(self) -> None:
        self.requests = 0
        self.codes: dict[int, int] = {}
        self.errors: dict[str, int] = {}
        self.buckets = [0] * (len(BUCKETS) + 1)  # last slot is +Inf
        self.seconds_sum = 0.0
        self.seconds_count = 0

    def observe(self, status_code: int, seconds: float) -> None:
        codes = self.codes
        codes[status_code] = codes.get(status_code, 0) + 1
        self.buckets[bisect_left(BUCKETS, seconds)] += 1
        self.seconds_sum += seconds
        self.seconds_count += 1


class GatewayMetrics:
    """Counters of one gateway process; every method is called from its event loop only."""

    def __init__(self) -> None:
        self.jobs: dict[JobKey, JobStats] = {}
        self.lifecycle_calls = 0
        self.lifecycle_errors = 0
        self.lifecycle_cache_hits = 0
        self.lifecycle_stale_hits = 0
        self.auth_failed = 0
        self.health_requests = 0

    def job(self, job_name: str, job_version: str) -> JobStats:
        stats = self.jobs.get((job_name, job_version))
        if stats is None:
            stats = self.jobs[(job_name, job_version)] = JobStats()
        return stats

    def count_request(self, job_name: str, job_version: str) -> None:
        self.job(job_name, job_version).requests += 1

    def count_response(self, job_name: str, job_version: str, status_code: int, seconds: float) -> None:
        self.job(job_name, job_version).observe(status_code, seconds)

    def count_error(self, job_name: str, job_version: str, cause: str) -> None:
        errors = self.job(job_name, job_version).errors
        errors[cause] = errors.get(cause, 0) + 1

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        out: list[str] = []

        def counter(name: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} counter")

        jobs = sorted(self.jobs.items())
        counter("pub_job_proxy_requests_total", "Requests proxied to jobs")
        for (job, version), stats in jobs:
            labels = _labels(("job_name", "job_version"), (job, version))
            out.append(f"pub_job_proxy_requests_total{{{labels}}} {stats.requests}")
        counter("pub_job_proxy_response_codes_total", "Responses sent for job calls by status code")
        for (job, version), stats in jobs:
            for code, value in sorted(stats.codes.items()):
                labels = _labels(("job_name", "job_version", "status_code"), (job, version, str(code)))
                out.append(f"pub_job_proxy_response_codes_total{{{labels}}} {value}")
        counter("pub_job_proxy_errors_total", "Job calls that failed in the gateway, by cause")
        for (job, version), stats in jobs:
            for cause, value in sorted(stats.errors.items()):
                labels = _labels(("job_name", "job_version", "cause"), (job, version, cause))
                out.append(f"pub_job_proxy_errors_total{{{labels}}} {value}")

        name = "pub_job_call_response_time_seconds"
        out.append(f"# HELP {name} Time from a job call's request head to the end of its response")
        out.append(f"# TYPE {name} histogram")
        for (job, version), stats in jobs:
            if not stats.seconds_count:
                continue
            base = _labels(("job_name", "job_version"), (job, version))
            cumulative = 0
            for bound, count in zip(BUCKETS, stats.buckets, strict=False):
                cumulative += count
                out.append(f'{name}_bucket{{{base},le="{bound:g}"}} {cumulative}')
            out.append(f'{name}_bucket{{{base},le="+Inf"}} {stats.seconds_count}')
            out.append(f"{name}_sum{{{base}}} {stats.seconds_sum!r}")
            out.append(f"{name}_count{{{base}}} {stats.seconds_count}")

        for metric, help_text, value in (
            ("pub_lifecycle_calls_total", "Calls to the lifecycle's can-call-job", self.lifecycle_calls),
            ("pub_lifecycle_errors_total", "Failed calls to the lifecycle", self.lifecycle_errors),
            ("pub_lifecycle_cache_hits_total", "Routing decisions served from the cache", self.lifecycle_cache_hits),
            (
                "pub_lifecycle_cache_recovered_failed_responses_total",
                "Stale decisions served because the lifecycle failed",
                self.lifecycle_stale_hits,
            ),
            ("pub_auth_failed_total", "Job calls refused with 401 or 403", self.auth_failed),
            ("pub_health_requests_total", "Requests to /pub/health", self.health_requests),
        ):
            counter(metric, help_text)
            out.append(f"{metric} {value}")
        return "\n".join(out) + "\n"
