"""Names and labels of a job's containers: how a Docker target finds its own after any restart.

Everything the target needs to know about a replica lives in the container's labels (platform, job,
version, replica index, deployment tag, port, deployment timestamp, target), so nothing about what runs
is kept in memory or in files: listing containers by the platform's and the target's labels is the
adoption after a restart. The deployment tag also tells one deployment (generation) of a version from
another while both run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

LABEL_PLATFORM = "trackside.platform"  # the platform's identity (trackside.identity)
LABEL_TARGET = "trackside.target"
LABEL_NAME = "trackside.job-name"
LABEL_VERSION = "trackside.job-version"
LABEL_REPLICA = "trackside.replica"
LABEL_TAG = "trackside.tag"
LABEL_PORT = "trackside.port"
LABEL_TIMESTAMP = "trackside.deployment-timestamp"
LABEL_JOB_TYPE = "trackside.job-type-version"
# A job's second and further images run as containers beside a replica's first, in its network
# namespace; they carry the platform's and target's labels and this one (the first's name); the job
# labels they inherit from their image do not make them replicas.
LABEL_SIDECAR_OF = "trackside.sidecar-of"
# Racetrack's labels, so tools written for its containers recognise ours.
RACETRACK_LABELS = ("racetrack/job", "racetrack/job-name", "racetrack/job-version")

_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")


def resource_name(name: str, version: str) -> str:
    """Racetrack's resource name: `job-{name}-v-{version with . replaced by -}`."""
    return _UNSAFE.sub("-", f"job-{name}-v-{version.replace('.', '-')}")


def generation(tag: str) -> str:
    """A short id of one deployment (its build tag): a forced redeploy's containers run beside the
    previous deployment's until they are ready, so their names must differ."""
    return hashlib.sha256(tag.encode()).hexdigest()[:6]


def container_name(target: str, name: str, version: str, replica: int, tag: str = "") -> str:
    suffix = f"-{generation(tag)}" if tag else ""
    return _UNSAFE.sub("-", f"ts-{target}-{resource_name(name, version)}{suffix}-{replica}")


def sidecar_labels(platform: str, target: str, replica_container: str) -> dict[str, str]:
    return {LABEL_PLATFORM: platform, LABEL_TARGET: target, LABEL_SIDECAR_OF: replica_container}


def job_labels(
    platform: str,
    target: str,
    name: str,
    version: str,
    replica: int,
    tag: str,
    port: int,
    timestamp: int,
    job_type: str,
) -> dict[str, str]:
    return {
        LABEL_PLATFORM: platform,
        LABEL_TARGET: target,
        LABEL_NAME: name,
        LABEL_VERSION: version,
        LABEL_REPLICA: str(replica),
        LABEL_TAG: tag,
        LABEL_PORT: str(port),
        LABEL_TIMESTAMP: str(timestamp),
        LABEL_JOB_TYPE: job_type,
        "racetrack/job": "true",
        "racetrack/job-name": name,
        "racetrack/job-version": version,
    }


@dataclass
class Replica:
    """One container of a job as `docker inspect` reports it."""

    id: str
    container: str
    name: str
    version: str
    index: int
    tag: str
    port: int
    timestamp: int
    job_type_version: str
    status: str  # created | running | restarting | exited | paused | dead
    exit_code: int | None
    restart_count: int
    error: str
    address: str  # host:port the gateway calls
    created: str = ""  # the engine's creation time (RFC 3339, UTC): orders deployments made in one second

    @property
    def running(self) -> bool:
        return self.status == "running"

    @classmethod
    def from_inspect(cls, data: dict[str, Any], host: str) -> Replica | None:
        labels = (data.get("Config") or {}).get("Labels") or {}
        # A sidecar inherits its image's job labels, but it is part of a replica, not one.
        if LABEL_NAME not in labels or LABEL_VERSION not in labels or LABEL_SIDECAR_OF in labels:
            return None
        state = data.get("State") or {}
        port = _int(labels.get(LABEL_PORT))
        address = f"{host}:{port}"
        published = ((data.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{port}/tcp") or []
        if published:  # a bridge network: the gateway calls the port published on the host
            host_ip = published[0].get("HostIp") or "127.0.0.1"
            host_ip = host if host_ip in ("0.0.0.0", "::") else host_ip
            address = f"{host_ip}:{published[0].get('HostPort')}"
        return cls(
            id=str(data.get("Id", "")),
            container=str(data.get("Name", "")).lstrip("/"),
            name=labels[LABEL_NAME],
            version=labels[LABEL_VERSION],
            index=_int(labels.get(LABEL_REPLICA)),
            tag=labels.get(LABEL_TAG, ""),
            port=port,
            timestamp=_int(labels.get(LABEL_TIMESTAMP)),
            job_type_version=labels.get(LABEL_JOB_TYPE, ""),
            status=str(state.get("Status", "unknown")),
            exit_code=state.get("ExitCode") if state.get("Status") in ("exited", "dead") else None,
            restart_count=_int(data.get("RestartCount")),
            error=str(state.get("Error") or ""),
            address=address,
            created=str(data.get("Created") or ""),
        )


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
