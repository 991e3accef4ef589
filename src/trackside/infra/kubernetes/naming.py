"""Names and labels of what a `kubernetes` target creates: how it finds its own objects after any restart.

Every object carries the platform's identity and the target's name as labels, so listing by them is
the adoption after a restart and never sees another platform's objects in a shared namespace. Label
values allow fewer characters than versions and tags have (SemVer's `+`, a deployment tag's `+`), so
labels hold a safe form and annotations the exact values; lookups filter on both.

Names: `job-{name}-v-{version}` (Racetrack's) for the Service and the job's secrets, and
`job-{name}-v-{version}-{generation}` for each deployment (generation: a short hash of its tag), so a
forced redeploy's Deployment runs beside the serving one until it is ready.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

PREFIX = "trackside.io"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "trackside"
LABEL_PLATFORM = f"{PREFIX}/platform"
LABEL_TARGET = f"{PREFIX}/target"
LABEL_NAME = f"{PREFIX}/job-name"
LABEL_VERSION = f"{PREFIX}/job-version"
LABEL_TAG = f"{PREFIX}/tag"
LABEL_DEPLOYMENT = f"{PREFIX}/deployment"  # the generation hash of the deployment tag
LABEL_BACKUP = f"{PREFIX}/backup"  # on Secrets an operator should back up: `-l trackside.io/backup=true`
LABEL_SECRET_KIND = f"{PREFIX}/secret-kind"  # job-secrets | runtime-env
ANNOTATION_VERSION = f"{PREFIX}/job-version"
ANNOTATION_TAG = f"{PREFIX}/tag"
ANNOTATION_TIMESTAMP = f"{PREFIX}/deployment-timestamp"
ANNOTATION_JOB_TYPE = f"{PREFIX}/job-type-version"
# Racetrack's labels, so tools written for its jobs recognise ours.
RACETRACK_LABELS = ("racetrack/job", "racetrack/job-name", "racetrack/job-version")

CONTAINER = "job"
CONTAINER_PORT = 7000  # the job contract's port inside the pod
SERVICE_PORT = 7000

_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_DNS_UNSAFE = re.compile(r"[^a-z0-9-]+")
MAX_LABEL = 63
MAX_NAME = 63  # names used as DNS labels (Services); Deployments keep theirs this short too


def label_value(value: str) -> str:
    """`value` as a valid label value: allowed characters only, alphanumeric at both ends, <= 63 chars."""
    safe = _LABEL_UNSAFE.sub("-", value)
    if len(safe) > MAX_LABEL:
        safe = f"{safe[: MAX_LABEL - 9]}-{_hash(value, 8)}"
    return safe.strip("-_.")


def dns_name(value: str, limit: int = MAX_NAME) -> str:
    """`value` as a DNS-1035 label: lowercase alphanumerics and '-', a letter first, <= `limit` chars."""
    safe = _DNS_UNSAFE.sub("-", value.lower()).strip("-")
    if not safe or not safe[0].isalpha():
        safe = f"j-{safe}"
    if len(safe) > limit:
        safe = f"{safe[: limit - 7].rstrip('-')}-{_hash(value, 6)}"
    return safe


def generation(tag: str) -> str:
    return _hash(tag, 6)


def resource_name(name: str, version: str) -> str:
    """Racetrack's name of a job version's objects: `job-{name}-v-{version with . as -}`."""
    return dns_name(f"job-{name}-v-{version.replace('.', '-')}", MAX_NAME - 8)


def deployment_name(name: str, version: str, tag: str) -> str:
    return f"{resource_name(name, version)}-{generation(tag)}"


def secrets_name(name: str, version: str) -> str:
    return f"{resource_name(name, version)}-secrets"


def runtime_env_name(name: str, version: str, tag: str) -> str:
    return f"{deployment_name(name, version, tag)}-env"


def target_labels(platform: str, target: str) -> dict[str, str]:
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_PLATFORM: label_value(platform), LABEL_TARGET: label_value(target)}


def version_labels(platform: str, target: str, name: str, version: str) -> dict[str, str]:
    return {
        **target_labels(platform, target),
        LABEL_NAME: label_value(name),
        LABEL_VERSION: label_value(version),
        "racetrack/job": "true",
        "racetrack/job-name": label_value(name),
        "racetrack/job-version": label_value(version),
    }


def deployment_labels(platform: str, target: str, name: str, version: str, tag: str) -> dict[str, str]:
    return {
        **version_labels(platform, target, name, version),
        LABEL_TAG: label_value(tag),
        LABEL_DEPLOYMENT: generation(tag),
    }


def selector(labels: dict[str, str]) -> str:
    """A label selector string matching every label of `labels`."""
    return ",".join(f"{key}={value}" for key, value in labels.items())


def version_of(obj: dict[str, Any]) -> str:
    """The exact job version of an object (annotation), else its label's safe form."""
    meta = obj.get("metadata") or {}
    return str((meta.get("annotations") or {}).get(ANNOTATION_VERSION) or (meta.get("labels") or {}).get(LABEL_VERSION))


def tag_of(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return str((meta.get("annotations") or {}).get(ANNOTATION_TAG) or (meta.get("labels") or {}).get(LABEL_TAG) or "")


def _hash(value: str, length: int) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:length]
