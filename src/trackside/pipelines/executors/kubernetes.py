"""The `kubernetes` executor: each attempt of a container step is a `batch/v1` Job on a cluster, through the
kubernetes target's own client (`trackside.infra.kubernetes.api.KubeApi`) and cluster discovery.

The Job runs `sh -c RUN` in the step's image (mapped through `pipeline_images`, as on docker) in a
container `main`, with `backoffLimit: 0` and `restartPolicy: Never` (an attempt is one pod; retries are
the scheduler's), `activeDeadlineSeconds` from the step's timeout, and `imagePullPolicy` from
`pipeline_kubernetes_image_pull_policy` (`Never` by default: an air-gapped node never pulls, and a
missing image fails the step naming the image and the settings). Its name is the attempt's
(`ts-{run uid prefix}-{job}-{attempt}`, made a DNS label when the step's name is not one) and it and
its pod carry the platform's id, the run's uid, the step's name and the attempt as labels: a restarted
platform finds the Job by them and watches it again, so a crash between creating it and recording it
never creates a second one, and a Job is never left behind by a step the platform forgot.

One pod watcher per executor (list + watch from its resourceVersion, listing again whenever a watch
ends: `trackside.infra.kubernetes.watch.PodWatcher`) sees every step pod of this platform; `wait` reads
its pod there. Its log is followed into the attempt's log file by a thread of its own (which alone
reads and closes that connection; `wait`, when cancelled, ends the stream through its `StreamCut`),
and copied whole when the follow did not end cleanly. `kill` deletes the Job with foreground
propagation (its pod first); `release` does the same once the outcome and log are recorded, unless
`pipeline_kubernetes_keep_jobs` keeps finished Jobs for the operator (1.20 has no
`ttlSecondsAfterFinished`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trackside.files import write_atomic
from trackside.infra.kubernetes.api import KubeApi, KubeError, StreamCut
from trackside.infra.kubernetes.naming import LABEL_MANAGED_BY, LABEL_PLATFORM, MANAGED_BY, label_value, selector
from trackside.infra.kubernetes.watch import PodWatcher
from trackside.pipelines.executors.base import (
    LABEL_ATTEMPT,
    LABEL_JOB,
    LABEL_RUN,
    ExecutorUnavailable,
    Handle,
    StepLaunch,
    StepOutcome,
)

log = logging.getLogger(__name__)

NAME = "kubernetes"
CONTAINER = "main"
PULL_POLICIES = ("Never", "IfNotPresent", "Always")
ANNOTATION_JOB = "trackside.pipeline/job-name"  # the step's exact name (its label holds a safe form)
KILL_GRACE_S = 3  # the pod's terminationGracePeriodSeconds: a killed step gets SIGTERM, then SIGKILL
POLL_S = 0.1  # how often `wait` looks at the watcher's (in-memory) view of the pod
JOB_CHECK_S = 2.0  # how often `wait` asks the API server about a Job whose pod it does not see
LOG_DRAIN_S = 30.0  # how long the followed log may take to end after the container did
# A finished Job this long ago is a leftover (its platform crashed between recording the step and deleting
# the Job): a running scheduler records a step within seconds of its end, and takes a dead one's steps
# over within its lease. Looked for at most every SWEEP_EVERY_S, when a step starts.
ORPHAN_AFTER_S = 3600.0
SWEEP_EVERY_S = 600.0
LOST_AFTER_S = 120.0  # how long `wait` rides out an API server that does not answer
# Waiting reasons that never resolve by themselves: the attempt fails with them.
STUCK_REASONS = (
    "ErrImageNeverPull",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
)
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_UNSAFE = re.compile(r"[^a-z0-9-]+")


def job_name(launch: StepLaunch) -> str:
    """The attempt's Job name: `launch.name` when it is a DNS label, else a safe form with a hash of it."""
    name = launch.name
    if len(name) <= 63 and _DNS_LABEL.fullmatch(name):
        return name
    suffix = f"-{hashlib.sha256(name.encode()).hexdigest()[:6]}-{launch.attempt}"
    safe = _DNS_UNSAFE.sub("-", name.lower()).strip("-")
    return safe[: 63 - len(suffix)].rstrip("-") + suffix


def step_labels(platform: str, launch: StepLaunch) -> dict[str, str]:
    """What the Job and its pod carry, and what finds them again: platform, run, step, attempt."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_PLATFORM: label_value(platform),
        LABEL_RUN: label_value(launch.run_uid),
        LABEL_JOB: label_value(launch.job),
        LABEL_ATTEMPT: str(launch.attempt),
    }


def step_job(
    launch: StepLaunch, platform: str, image: str, pull_policy: str = "Never", name: str | None = None
) -> dict[str, Any]:
    """The `batch/v1` Job of one attempt (a plain API dict; no call made)."""
    labels = step_labels(platform, launch)
    annotations = {ANNOTATION_JOB: launch.job}
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": pull_policy,
        "command": ["sh", "-c", launch.command],
        "securityContext": {"allowPrivilegeEscalation": False},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if launch.env:
        container["env"] = [{"name": key, "value": value} for key, value in sorted(launch.env.items())]
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": KILL_GRACE_S,
                "containers": [container],
            },
        },
    }
    if launch.timeout_seconds is not None:
        spec["activeDeadlineSeconds"] = max(1, math.ceil(launch.timeout_seconds))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name or job_name(launch), "labels": labels, "annotations": annotations},
        "spec": spec,
    }


def _condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            return dict(condition)
    return None


def _finished_at(job: dict[str, Any]) -> datetime | None:
    """When the Job completed or failed, or None while it has not."""
    status = job.get("status") or {}
    stamp = status.get("completionTime")
    if not stamp:
        failed = _condition(job, "Failed")
        stamp = (failed or {}).get("lastTransitionTime")
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None


def _container_state(pod: dict[str, Any]) -> dict[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == CONTAINER:
            return dict(status.get("state") or {})
    return {}


class _LogPump(threading.Thread):
    """Follows the pod's log into the attempt's log file. Only this thread reads the stream and closes its
    connection (`release_thread`); others end it through its `StreamCut` (`abandon`)."""

    def __init__(self, api: KubeApi, pod: str, path: Path, pumps: set[_LogPump], lock: threading.Lock) -> None:
        super().__init__(name=f"pipeline-kubernetes-log-{pod}", daemon=True)
        self.api = api
        self.pod = pod
        self.path = path
        self.clean = False  # the stream ended by itself, without an error
        self.cut = StreamCut()
        self._pumps = pumps  # the executor's live pumps, this one among them while it runs
        self._pumps_lock = lock
        self._lock = threading.Lock()
        self._abandoned = False

    def start(self) -> None:
        with self._pumps_lock:
            self._pumps.add(self)
        super().start()

    def abandon(self) -> None:
        """Write nothing more (another writer may take the file over) and end the stream now."""
        with self._lock:
            self._abandoned = True
        self.cut.cut()

    def run(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb") as out:
                for line in self.api.log_lines(self.pod, CONTAINER, 0, follow=True, cut=self.cut):
                    with self._lock:
                        if self._abandoned:
                            return
                        out.write(line.encode() + b"\n")
                        out.flush()
            with self._lock:
                self.clean = not self._abandoned and not self.cut.is_cut
        except (KubeError, OSError) as exc:
            log.debug("pipeline step log of pod %s: %s", self.pod, exc)
        except Exception:
            log.exception("pipeline step log of pod %s failed", self.pod)
        finally:
            self.api.release_thread()
            with self._pumps_lock:
                self._pumps.discard(self)


@dataclass
class _Watch:
    """What `wait` keeps between its looks at one attempt."""

    name: str  # the Job's
    pump: _LogPump | None = None
    next_job_check: float = 0.0
    next_pump: float = 0.0


class KubernetesExecutor:
    name = NAME

    def __init__(
        self,
        api: KubeApi,
        platform: str,
        images: Mapping[str, str] | None = None,
        pull_policy: str = "Never",
        keep_jobs: bool = False,
        orphan_after: float = ORPHAN_AFTER_S,
    ) -> None:
        if pull_policy not in PULL_POLICIES:
            raise ValueError(f"pull policy must be one of {', '.join(PULL_POLICIES)}, got {pull_policy!r}")
        self.api = api
        self.platform = platform
        self.images = dict(images or {})
        self.pull_policy = pull_policy
        self.keep_jobs = keep_jobs
        self.orphan_after = orphan_after
        # Every step Job and pod of this platform in the namespace (a target's pods have no run label).
        self.selector = selector({LABEL_PLATFORM: label_value(platform)}) + f",{LABEL_RUN}"
        self.watcher = PodWatcher(api, self.selector)
        self._next_sweep = 0.0
        self._sweeps: set[asyncio.Task[int]] = set()
        self._pumps: set[_LogPump] = set()
        self._pumps_lock = threading.Lock()

    def close(self) -> None:
        """Stop watching (steps go on running: the next start re-attaches) and close the connections."""
        self.watcher.stop()
        with self._pumps_lock:
            pumps = list(self._pumps)
        for pump in pumps:
            pump.abandon()
        for pump in pumps:
            pump.join(10)
        self.api.close()

    def image_for(self, image: str) -> str:
        return self.images.get(image, image)

    async def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except KubeError as exc:
            raise ExecutorUnavailable(exc.message) from None

    def _handle(self, job: dict[str, Any], image: str | None = None) -> Handle:
        meta = job.get("metadata") or {}
        handle: Handle = {"job": meta.get("name"), "namespace": meta.get("namespace") or self.api.namespace}
        if meta.get("uid"):
            handle["uid"] = meta["uid"]
        if image:
            handle["image"] = image
        return handle

    async def launch(self, launch: StepLaunch) -> Handle:
        image = self.image_for(launch.image)
        obj = step_job(launch, self.platform, image, self.pull_policy)
        self.watcher.start()  # seeing the pod from its creation on
        if not self.keep_jobs and time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_EVERY_S
            task = asyncio.get_running_loop().create_task(self.sweep())
            self._sweeps.add(task)
            task.add_done_callback(self._sweeps.discard)
        try:
            created = await asyncio.to_thread(self.api.create, obj)
        except KubeError as exc:
            if not exc.conflict:
                raise ExecutorUnavailable(f"cannot create the Job of step {launch.job}: {exc.message}") from None
            found = await self.attach(launch, None)  # this very attempt's Job exists already
            if found is None:
                raise ExecutorUnavailable(f"cannot create the Job of step {launch.job}: {exc.message}") from None
            return found
        return self._handle(created, image)

    async def attach(self, launch: StepLaunch, handle: Handle | None) -> Handle | None:
        """The attempt's Job, by its name, else by its labels (platform, run, step, attempt); None if none."""
        wanted = step_labels(self.platform, launch)
        name = str((handle or {}).get("job") or job_name(launch))
        job: dict[str, Any] | None = await self._call(self.api.find, "Job", name)
        if job is not None and any((job["metadata"].get("labels") or {}).get(k) != v for k, v in wanted.items()):
            job = None  # the name is taken by something else: not ours
        if job is None:
            found: list[dict[str, Any]] = await self._call(self.api.items, "Job", selector(wanted))
            job = found[0] if found else None
        if job is None:
            return None
        return {**(handle or {}), **self._handle(job)}

    async def _pod_of(self, name: str) -> dict[str, Any] | None:
        pods = self.watcher.pods() if self.watcher.synced else await self._call(self.watcher.pods)
        mine = [p for p in pods if ((p.get("metadata") or {}).get("labels") or {}).get("job-name") == name]
        if not mine:
            return None
        return max(mine, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp") or ""))

    async def wait(self, launch: StepLaunch, handle: Handle) -> StepOutcome:
        watch = _Watch(str(handle["job"]))
        loop = asyncio.get_running_loop()
        failing_since: float | None = None
        try:
            while True:
                try:
                    outcome = await self._look(launch, handle, watch)
                    failing_since = None
                except ExecutorUnavailable as exc:  # the API server is away (restarting?): try again a while
                    failing_since = failing_since or loop.time()
                    if loop.time() - failing_since > LOST_AFTER_S:
                        return StepOutcome(None, f"lost the Job {watch.name}: {exc}")
                    await asyncio.sleep(1.0)
                    continue
                if outcome is not None:
                    return outcome
                await asyncio.sleep(POLL_S if self.watcher.synced else 0.5)
        finally:
            if watch.pump is not None and watch.pump.is_alive():
                watch.pump.abandon()  # cancelled (a kill, a stop): the next watch follows the log anew

    async def _look(self, launch: StepLaunch, handle: Handle, watch: _Watch) -> StepOutcome | None:
        """One look at the attempt's pod (or Job): how it ended, or None while it runs."""
        now = time.monotonic()
        pod = await self._pod_of(watch.name)
        if pod is None:
            if now < watch.next_job_check:
                return None
            watch.next_job_check = now + JOB_CHECK_S
            return await self._job_outcome(watch.name)
        pod_name = str(pod["metadata"]["name"])
        state = _container_state(pod)
        pump = watch.pump
        started = "running" in state or "terminated" in state
        broken = pump is not None and not pump.is_alive() and "terminated" not in state
        if started and (pump is None or (broken and now >= watch.next_pump)):
            pump = _LogPump(self.api, pod_name, launch.log_path, self._pumps, self._pumps_lock)
            watch.pump = pump  # (again when the follow broke while the container ran)
            pump.start()
            watch.next_pump = now + 1.0
        if "terminated" in state:
            assert pump is not None
            return await self._ended(launch, watch.name, pod_name, state["terminated"], pump)
        reason = str((state.get("waiting") or {}).get("reason") or "")
        if reason in STUCK_REASONS:
            return StepOutcome(None, self._stuck(handle, reason, state["waiting"]))
        status = pod.get("status") or {}
        if status.get("phase") == "Failed":  # e.g. evicted before its container ran
            return StepOutcome(None, f"the pod {pod_name} failed: {status.get('reason')}: {status.get('message')}")
        return None

    async def _ended(
        self, launch: StepLaunch, name: str, pod: str, terminated: dict[str, Any], pump: _LogPump
    ) -> StepOutcome:
        deadline = time.monotonic() + LOG_DRAIN_S
        while pump.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if pump.is_alive() or not pump.clean:
            pump.abandon()
            with contextlib.suppress(ExecutorUnavailable):
                await self._call(self._copy_log, pod, launch.log_path)
        code = int(terminated.get("exitCode") or 0)
        details: dict[str, Any] = {k: terminated[k] for k in ("exitCode", "reason", "message") if k in terminated}
        if terminated.get("reason") == "OOMKilled":
            return StepOutcome(code, "the container ran out of memory (OOM killed)", details)
        if code != 0:
            job = await self._call(self.api.find, "Job", name)
            failed = _condition(job or {}, "Failed")
            if failed is not None and failed.get("reason") == "DeadlineExceeded":
                return StepOutcome(code, self._deadline_reason(job or {}), details)
        return StepOutcome(code, details=details)

    def _copy_log(self, pod: str, path: Path) -> None:
        """The container's whole log, read at once (the follow did not end cleanly)."""
        lines = list(self.api.log_lines(pod, CONTAINER, 0))
        write_atomic(path, "".join(line + "\n" for line in lines))

    async def _job_outcome(self, name: str) -> StepOutcome | None:
        """For a Job whose pod is not (or no longer) there: how it ended, or None while it runs."""
        job = await self._call(self.api.find, "Job", name)
        if job is None:
            return StepOutcome(None, f"the Job {name} is gone (deleted outside the platform)")
        failed = _condition(job, "Failed")
        if failed is not None:
            if failed.get("reason") == "DeadlineExceeded":
                return StepOutcome(None, self._deadline_reason(job))
            return StepOutcome(None, f"the Job {name} failed: {failed.get('reason')}: {failed.get('message')}")
        if _condition(job, "Complete") is not None:
            return StepOutcome(0)  # its pod is gone (deleted by someone): no log to copy
        if (job.get("metadata") or {}).get("deletionTimestamp"):
            return StepOutcome(None, f"the Job {name} is being deleted")
        return None

    @staticmethod
    def _deadline_reason(job: dict[str, Any]) -> str:
        seconds = (job.get("spec") or {}).get("activeDeadlineSeconds")
        return f"timed out after {seconds} s (the Job's activeDeadlineSeconds)"

    def _stuck(self, handle: Handle, reason: str, waiting: dict[str, Any]) -> str:
        image = handle.get("image") or "its image"
        if reason == "ErrImageNeverPull":
            return (
                f"image {image} is not on the cluster's node and pulling is off (map the name to a local image "
                "in pipeline_images, or allow pulls with pipeline_kubernetes_image_pull_policy)"
            )
        return f"the step's container cannot start: {reason}: {waiting.get('message') or ''}".rstrip(": ")

    async def sweep(self) -> int:
        """Delete this platform's step Jobs that finished more than `orphan_after` seconds ago; how many."""
        try:
            jobs: list[dict[str, Any]] = await asyncio.to_thread(self.api.items, "Job", self.selector)
        except KubeError as exc:
            log.info("pipeline kubernetes executor: cannot look for leftover Jobs: %s", exc)
            return 0
        now = datetime.now(UTC)
        deleted = 0
        for job in jobs:
            ended = _finished_at(job)
            if ended is None or (job.get("metadata") or {}).get("deletionTimestamp"):
                continue
            if (now - ended).total_seconds() >= self.orphan_after:
                name = str(job["metadata"]["name"])
                log.info("pipeline kubernetes executor: deleting the leftover Job %s", name)
                with contextlib.suppress(KubeError):
                    await asyncio.to_thread(self.api.delete, "Job", name, "Foreground")
                    deleted += 1
        return deleted

    async def kill(self, launch: StepLaunch, handle: Handle) -> None:
        """Delete the Job with foreground propagation: its pod is killed first (SIGTERM, then SIGKILL)."""
        await self._call(self.api.delete, "Job", str(handle["job"]), "Foreground")

    async def release(self, launch: StepLaunch, handle: Handle) -> None:
        if not self.keep_jobs:
            await self._call(self.api.delete, "Job", str(handle["job"]), "Foreground")
