"""A job's pods as the target sees them: address, readiness, and why one can't run.

`PodState.failure` names the states a rollout never recovers from on its own: an image that can't be
pulled (`ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`), a container that keeps exiting
(`CrashLoopBackOff`, or restarted after exiting), a container the kubelet can't create
(`CreateContainerConfigError`, ...) and a pod no node can take (`Unschedulable`, with the scheduler's
message). A deploy fails at once on them, with the pod's recent logs, instead of at a timeout.

Except where the kubelet itself retries: `CreateContainerConfigError` because its cache of Secrets or
ConfigMaps has not caught up with one created a moment ago ("failed to sync secret cache") clears on
its own, so it only shows in `describe()` (a deploy that stays there fails at its ready timeout).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trackside.infra.kubernetes.naming import (
    ANNOTATION_JOB_TYPE,
    ANNOTATION_TIMESTAMP,
    CONTAINER,
    CONTAINER_PORT,
    LABEL_DEPLOYMENT,
    LABEL_NAME,
    tag_of,
    version_of,
)

PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "RegistryUnavailable")
CREATE_FAILURES = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
CREATE_RETRIED = ("failed to sync secret cache", "failed to sync configmap cache")


@dataclass
class PodState:
    name: str
    job_name: str
    version: str
    tag: str
    generation: str
    phase: str  # Pending | Running | Succeeded | Failed | Unknown
    ip: str
    ready: bool
    restarts: int
    waiting_reason: str
    waiting_message: str
    terminated_reason: str
    exit_code: int | None
    unschedulable: str  # the scheduler's message, when it can't place the pod
    deleting: bool
    timestamp: int
    job_type_version: str
    created: str
    index: int = 0  # position among its deployment's pods (by name), for `[replica-i]` prefixes

    @property
    def address(self) -> str:
        return f"{self.ip}:{CONTAINER_PORT}" if self.ip else ""

    @property
    def running(self) -> bool:
        return self.phase == "Running" and not self.deleting and bool(self.ip)

    @property
    def failure(self) -> str | None:
        """Why this pod will not get ready by itself, or None."""
        if self.unschedulable:
            return f"pod {self.name} is unschedulable: {self.unschedulable}"
        reason = self.waiting_reason
        if reason in PULL_FAILURES:
            return f"pod {self.name}: {reason}: {self.waiting_message or 'the image cannot be pulled'}"
        if reason in CREATE_FAILURES and not any(retried in self.waiting_message for retried in CREATE_RETRIED):
            return f"pod {self.name}: {reason}: {self.waiting_message}"
        if reason == "CrashLoopBackOff" or (self.restarts and not self.ready and self.exit_code is not None):
            code = f" (exit code {self.exit_code})" if self.exit_code is not None else ""
            return (
                f"pod {self.name}: CrashLoopBackOff: the job's container keeps exiting{code}, "
                f"restarted {self.restarts} times"
            )
        if self.phase == "Failed":
            return f"pod {self.name} failed: {self.terminated_reason or 'its container exited'}"
        return None

    def describe(self) -> str:
        if self.failure:
            return self.failure
        if self.deleting:
            return f"pod {self.name} is terminating"
        if self.waiting_reason:
            detail = f" ({self.waiting_message})" if self.waiting_message else ""
            return f"pod {self.name} is waiting: {self.waiting_reason}{detail}"
        if not self.ready:
            return f"pod {self.name} is {self.phase.lower()}, not ready"
        return f"pod {self.name} is ready"

    @classmethod
    def from_api(cls, pod: dict[str, Any]) -> PodState:
        meta = pod.get("metadata") or {}
        status = pod.get("status") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        container: dict[str, Any] = next(
            (c for c in status.get("containerStatuses") or [] if c.get("name") == CONTAINER),
            {},
        )
        state = container.get("state") or {}
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or (container.get("lastState") or {}).get("terminated") or {}
        unschedulable = ""
        for condition in status.get("conditions") or []:
            if (
                condition.get("type") == "PodScheduled"
                and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"
            ):
                unschedulable = str(condition.get("message") or "no node fits")
        exit_code = terminated.get("exitCode")
        return cls(
            name=str(meta.get("name", "")),
            job_name=str(labels.get(LABEL_NAME, "")),
            version=version_of(pod),
            tag=tag_of(pod),
            generation=str(labels.get(LABEL_DEPLOYMENT, "")),
            phase=str(status.get("phase") or "Pending"),
            ip=str(status.get("podIP") or ""),
            ready=bool(container.get("ready")),
            restarts=int(container.get("restartCount") or 0),
            waiting_reason=str(waiting.get("reason") or ""),
            waiting_message=str(waiting.get("message") or ""),
            terminated_reason=str(terminated.get("reason") or ""),
            exit_code=int(exit_code) if isinstance(exit_code, int) else None,
            unschedulable=unschedulable,
            deleting=bool(meta.get("deletionTimestamp")),
            timestamp=_int(annotations.get(ANNOTATION_TIMESTAMP)),
            job_type_version=str(annotations.get(ANNOTATION_JOB_TYPE) or ""),
            created=str(meta.get("creationTimestamp") or ""),
        )


def pod_states(pods: list[dict[str, Any]]) -> list[PodState]:
    """States of `pods`, ordered by job, version, deployment and name, each with its index."""
    states = sorted((PodState.from_api(pod) for pod in pods), key=lambda p: (p.job_name, p.version, p.tag, p.name))
    counters: dict[tuple[str, str, str], int] = {}
    for state in states:
        key = (state.job_name, state.version, state.tag)
        state.index = counters.get(key, 0)
        counters[key] = state.index + 1
    return states


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
