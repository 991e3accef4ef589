"""The supervisor: keeps the store's job statuses true to what the infrastructure targets report.

The store says what should exist; targets say what does. Every `supervisor_interval` seconds each
target's monitor lists its jobs and the supervisor copies status, error and replicas into the
store (writing only what changed), and the time of the job's last call when the target saw a later
one than the store has, to the minute (the job API's `last_call_time`, `LAST CALL AT` in `racetrack
list`). A job the store has but no target reports is `lost`; one a target reports but the store
lacks is `orphaned`, which is logged and never stored. Restarting crashed replicas is the target's
own business (as a container engine's restart policy is).

Several supervisors may run on one store (in several `trackside up` or `serve supervisor` processes):
one acts at a time, holding the `supervisor` lease in the store (`trackside.lifecycle.leases`); the
others wait, and one takes over within `lease_duration` seconds of the holder stopping (at once when
it stopped cleanly and gave the lease up).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trackside.config import Settings
from trackside.domain import JobDto, JobStatus
from trackside.lifecycle import leases
from trackside.lifecycle.deployments import versions_in_progress
from trackside.lifecycle.job_versions import timestamp
from trackside.plugins.engine import PluginEngine
from trackside.store.base import utcnow
from trackside.store.database import Database
from trackside.store.models import Job

log = logging.getLogger(__name__)

LEASE = "supervisor"
LAST_CALL_RESOLUTION_S = 60


class Supervisor:
    def __init__(
        self, settings: Settings, db: Database, plugins: PluginEngine, worker: leases.Worker | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self.plugins = plugins
        self.worker = worker or leases.current_worker()
        self.acting: bool | None = None  # whether it held the lease at its last tick (None: no tick yet)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.release()

    def release(self) -> None:
        """Give the supervisor's lease up, so another supervisor takes over at once."""
        if self.acting:
            self.acting = False
            try:
                leases.release(self.db, LEASE, self.worker)
            except Exception:
                log.exception("supervisor: giving up the lease failed")

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.supervisor_interval):
            self.tick()

    def tick(self) -> dict[str, int] | None:
        """One pass if this supervisor holds (or can take) the lease; None while another one acts."""
        try:
            # The lease outlives a pass by far: a slow pass or a missed tick doesn't hand it over.
            duration = max(self.settings.lease_duration, 3 * self.settings.supervisor_interval)
            acting = leases.acquire(self.db, LEASE, self.worker, duration)
            if acting != self.acting:
                log.info("supervisor: %s", "acting (holding the lease)" if acting else "standing by")
                self.acting = acting
            return self.sync_once() if acting else None
        except Exception:
            log.exception("supervisor: syncing job statuses failed")
            return None

    def sync_once(self) -> dict[str, int]:
        """One reconciliation pass; returns counts by resulting status (for logs and tests).

        The store is read before the targets are asked, so every report is newer than the row it
        is compared with: a report taken while a deploy was still waiting for its replicas cannot
        be written over the row that deploy has since marked running."""
        # Compare on plain column tuples and write only what changed: a pass over 10,000 idle jobs
        # then costs one light query and no writes.
        columns = (
            Job.id,
            Job.name,
            Job.version,
            Job.status,
            Job.infrastructure_target,
            Job.image_tag,
            Job.error,
            Job.internal_name,
            Job.replica_internal_names,
            Job.infrastructure_stats,
            Job.last_call_time,
        )
        with self.db.session() as session:
            rows = session.execute(select(*columns)).all()
            deploying = versions_in_progress(session)
        reported: dict[str, dict[tuple[str, str], JobDto]] = {}
        for name, target in self.plugins.infrastructure_targets().items():
            if target.job_monitor is None:
                continue
            try:
                reported[name] = {(j.name, j.version): j for j in target.job_monitor.list_jobs(self.settings)}
            except Exception:
                log.exception("supervisor: target %s could not list its jobs", name)
        counts: dict[str, int] = {}
        known: set[tuple[str, str]] = set()
        with self.db.session() as session:
            for row in rows:
                known.add((row.name, row.version))
                status = row.status
                if status != JobStatus.STARTING.value and row.infrastructure_target in reported:
                    found = reported[row.infrastructure_target].get((row.name, row.version))
                    if (row.name, row.version) in deploying and found is not None and found.image_tag != row.image_tag:
                        # A deployment runs a new generation beside the serving one: the report is about
                        # replicas the row does not point at yet; the deployment decides.
                        counts[status] = counts.get(status, 0) + 1
                        continue
                    if found is not None and found.status == JobStatus.STARTING.value:
                        # Its replicas are still booting (the platform or a replica has just started):
                        # nothing is known yet, and the row keeps what it says until they answer or
                        # their boot time is up (a starting row is the deployment's to move on).
                        counts[status] = counts.get(status, 0) + 1
                        continue
                    desired = self._desired(row, found)
                    if any(getattr(row, key) != value for key, value in desired.items()) and self._write_if_unchanged(
                        session, row, desired
                    ):
                        status = desired["status"]
                counts[status] = counts.get(status, 0) + 1
        for target_name, jobs in reported.items():
            for key in jobs.keys() - known:
                log.warning(
                    "supervisor: %s %s runs on %s but is not in the store (orphaned)", key[0], key[1], target_name
                )
        return counts

    @staticmethod
    def _write_if_unchanged(session: Session, row: Any, desired: dict[str, Any]) -> bool:
        """Write `desired` only if no deploy, redeploy or move changed the row since it was read.

        A move that switched the job to another target between our read and our write would
        otherwise get the old target's replicas written back, and the gateway would route calls
        to replicas about to be removed. The check is in the UPDATE itself, so it holds under
        concurrent writers on PostgreSQL as on SQLite."""
        result = session.execute(
            update(Job)
            .where(
                Job.id == row.id,
                Job.infrastructure_target == row.infrastructure_target,
                Job.image_tag == row.image_tag,
                Job.status != JobStatus.STARTING.value,
            )
            .values(**desired, update_time=utcnow())
        )
        return bool(getattr(result, "rowcount", 0))

    @staticmethod
    def _desired(row: Any, found: JobDto | None) -> dict[str, Any]:
        """The job's fields as its target reports them."""
        if found is None:
            return {
                "status": JobStatus.LOST.value,
                "error": f"not found on infrastructure target {row.infrastructure_target}",
            }
        desired: dict[str, Any] = {
            "status": found.status,
            "error": found.error,
            "internal_name": found.internal_name or row.internal_name,
            "replica_internal_names": list(found.replica_internal_names),
            "infrastructure_stats": dict(found.infrastructure_stats),
        }
        # The last call only moves forward: a replica restarted since (its counter back at zero) or
        # a target reporting a replica that was not called doesn't hide a later call seen before. A
        # job called all the time is written once a minute, not at every pass (as Racetrack's, whose
        # supervisor passes once a minute).
        stored = timestamp(row.last_call_time)
        if found.last_call_time and (stored is None or found.last_call_time >= stored + LAST_CALL_RESOLUTION_S):
            desired["last_call_time"] = datetime.fromtimestamp(found.last_call_time, UTC)
        return desired
