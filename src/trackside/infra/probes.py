"""HTTP probes of a replica's `/live`, `/ready` and `/metrics` over loopback.

Plain `http.client` with a short timeout: a probe is one small GET, and a stuck job must not stall
the listing of all the others.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

from trackside.domain import JobDto, JobStatus

# Racetrack probes with 3 s: a loaded machine can take over a second to answer a tiny GET, and a
# job that answers slowly is still running, not in error.
PROBE_TIMEOUT = 3.0


@dataclass
class ProbeResult:
    status: int | None  # None when the replica did not answer
    body: str = ""
    error: str | None = None  # why there was no answer

    @property
    def ok(self) -> bool:
        return self.status == 200

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def describe(self) -> str:
        if self.status is None:
            return f"not answering ({self.error})"
        body = self.body.strip()
        return f"HTTP {self.status}: {body[:500]}" if body else f"HTTP {self.status}"


def probe(host: str, port: int, path: str, timeout: float = PROBE_TIMEOUT) -> ProbeResult:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return ProbeResult(response.status, response.read(65536).decode("utf-8", errors="replace"))
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(None, error=str(exc) or type(exc).__name__)
    finally:
        conn.close()


def live_error(result: ProbeResult) -> str:
    """The reason a job gives on a failed `/live` (the runtime puts its import error there)."""
    error = result.json().get("error")
    return str(error) if error else result.describe()


def last_call_timestamp(metrics_text: str) -> int | None:
    """`last_call_timestamp` from a Prometheus text exposition, if present and set."""
    for line in metrics_text.splitlines():
        if line.startswith("last_call_timestamp"):
            parts = line.split()
            try:
                value = int(float(parts[-1]))
            except (ValueError, IndexError):
                return None
            return value or None
    return None


def listed_job(
    name: str,
    version: str,
    *,
    target: str,
    image_tag: str,
    job_type_version: str | None,
    replicas: int,
    restarts: int,
    first_address: str,
    answering: list[str],
    errors: list[str],
    last_calls: list[int],
    booting: int = 0,
    **stats: Any,
) -> JobDto:
    """A target's listing entry for a job version, from the probes of the replicas that serve it.

    Running unless a replica reported an error (the errors, one a line, are the entry's error), or
    starting while none answered yet and some are still `booting` (within the time a deployment gives
    them); the internal name is the first replica that answered, or the first replica when none did.
    """
    if errors:
        status = JobStatus.ERROR
    elif booting and not answering:
        status = JobStatus.STARTING
    else:
        status = JobStatus.RUNNING
    return JobDto(
        name=name,
        version=version,
        status=status.value,
        error="\n".join(errors) if errors else None,
        internal_name=answering[0] if answering else first_address,
        replica_internal_names=answering,
        image_tag=image_tag,
        infrastructure_target=target,
        job_type_version=job_type_version or None,
        last_call_time=max(last_calls) if last_calls else None,
        infrastructure_stats={"replicas": replicas, "restarts": restarts, **stats},
    )
