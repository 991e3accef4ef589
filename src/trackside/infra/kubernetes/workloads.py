"""A `kubernetes` target's objects in its namespace: find them by label, remove them, read pod output.

The one module that turns a target's job versions into API calls, shared by its deployer, monitor and
logs streamer (as `JobContainers` is for a Docker target). Every query is filtered on the platform's
and the target's labels, so another platform's (or another target's) objects in the same namespace
are never listed nor removed; the exact version and tag are checked on the annotations as well.
"""

from __future__ import annotations

from typing import Any

from trackside.infra.kubernetes.api import KubeApi, KubeError
from trackside.infra.kubernetes.naming import (
    CONTAINER,
    LABEL_DEPLOYMENT,
    LABEL_NAME,
    LABEL_VERSION,
    generation,
    label_value,
    selector,
    tag_of,
    target_labels,
    version_of,
)
from trackside.infra.kubernetes.pods import PodState, pod_states
from trackside.infra.kubernetes.watch import PodWatcher

# What a job version owns, in the order they are removed (workloads first, their Service and secrets last).
OWNED_KINDS = ("Deployment", "Secret", "Service")


class JobWorkloads:
    def __init__(self, api: KubeApi, target: str, platform: str) -> None:
        self.api = api
        self.target = target
        self.platform = platform
        self.watcher = PodWatcher(api, self.selector())

    @property
    def namespace(self) -> str:
        return self.api.namespace

    def selector(self, name: str | None = None, version: str | None = None, tag: str | None = None) -> str:
        labels = target_labels(self.platform, self.target)
        if name is not None:
            labels[LABEL_NAME] = label_value(name)
        if version is not None:
            labels[LABEL_VERSION] = label_value(version)
        if tag is not None:
            labels[LABEL_DEPLOYMENT] = generation(tag)
        return selector(labels)

    def objects(
        self, kind: str, name: str | None = None, version: str | None = None, tag: str | None = None
    ) -> list[dict[str, Any]]:
        """This target's objects of `kind` (of one job version, and one deployment of it, when given)."""
        found = self.api.items(kind, self.selector(name, version, tag))
        return [obj for obj in found if _matches(obj, version, tag)]

    def pods(self, name: str | None = None, version: str | None = None, tag: str | None = None) -> list[PodState]:
        """Pod states from the watch (current within its latency), filtered like `objects`."""
        pods = self.watcher.pods()
        return pod_states([p for p in pods if _pod_matches(p, name, version, tag)])

    def pods_now(self, name: str, version: str, tag: str | None = None) -> list[PodState]:
        """Pod states listed from the API server now (for a rollout's decisions)."""
        return pod_states(self.objects("Pod", name, version, tag))

    def remove_deployment(self, name: str, version: str, tag: str, grace_seconds: int | None = None) -> int:
        """Remove one deployment (generation) of a version: its Deployment (its pods with it) and its Secret."""
        removed = 0
        for kind in ("Deployment", "Secret"):
            for obj in self.objects(kind, name, version, tag):
                removed += self._delete(kind, obj, grace_seconds)
        return removed

    def remove_job(self, name: str, version: str) -> int:
        """Remove everything the target created for a version: Deployments, Secrets, its Service."""
        removed = 0
        for kind in OWNED_KINDS:
            for obj in self.objects(kind, name, version):
                removed += self._delete(kind, obj)
        return removed

    def _delete(self, kind: str, obj: dict[str, Any], grace_seconds: int | None = None) -> int:
        try:
            return int(self.api.delete(kind, obj["metadata"]["name"], grace_seconds=grace_seconds))
        except KubeError as exc:
            if exc.not_found:
                return 0
            raise

    def logs(self, pod: str, tail: int) -> list[str]:
        """The job container's output (all of it when tail <= 0); empty when it has none yet."""
        for previous in (False, True):  # a container in back-off: the output of the run that exited
            try:
                lines = list(self.api.log_lines(pod, CONTAINER, tail, previous=previous))
            except KubeError:
                continue
            if lines:
                return lines
        return []


def _matches(obj: dict[str, Any], version: str | None, tag: str | None) -> bool:
    if version is not None and version_of(obj) != version:
        return False
    return tag is None or tag_of(obj) == tag


def _pod_matches(pod: dict[str, Any], name: str | None, version: str | None, tag: str | None) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if name is not None and labels.get(LABEL_NAME) != label_value(name):
        return False
    return _matches(pod, version, tag)
