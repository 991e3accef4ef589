"""Run retention: finished runs older than the operator's `pipeline_run_retention_days` are deleted,
with their steps, events, pending notifications and files (`{data_dir}/pipelines/runs/{run}/`).

The store is the platform's live state, not an archive (Argo's lesson, reference 5.3): without a
limit, every run ever made stays. 0 (the default) keeps runs forever. A run is old by when it
finished; active runs are never touched. A retry that kept a deleted run's successful steps still
shows their logs, from its own rows. Every scheduler runs the check; deleting twice is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select

from trackside.pipelines.conditions import FINAL
from trackside.pipelines.models import PipelineDelivery, PipelineEvent, PipelineRun, PipelineStep
from trackside.store.base import utcnow
from trackside.store.database import Database

log = logging.getLogger(__name__)

CHECK_SECONDS = 3600.0
BATCH = 500


def delete_finished_runs(db: Database, data_dir: Path, finished_before: datetime) -> int:
    """Delete the runs that finished before `finished_before`; how many were deleted."""
    deleted = 0
    while True:
        with db.session() as session:
            ids = list(
                session.scalars(
                    select(PipelineRun.id)
                    .where(
                        PipelineRun.status.in_([status.value for status in FINAL]),
                        PipelineRun.finished_at < finished_before,
                    )
                    .limit(BATCH)
                )
            )
            if not ids:
                return deleted
            events = select(PipelineEvent.id).where(PipelineEvent.run_id.in_(ids))
            session.execute(delete(PipelineDelivery).where(PipelineDelivery.event_id.in_(events)))
            session.execute(delete(PipelineEvent).where(PipelineEvent.run_id.in_(ids)))
            session.execute(delete(PipelineStep).where(PipelineStep.run_id.in_(ids)))
            session.execute(delete(PipelineRun).where(PipelineRun.id.in_(ids)))
        for uid in ids:
            shutil.rmtree(data_dir / "pipelines" / "runs" / uid, ignore_errors=True)
        deleted += len(ids)
        log.info("pipeline retention: deleted %d finished run(s)", len(ids))


class RetentionLoop:
    """The check, at start and every CHECK_SECONDS, as a task of the scheduler's event loop."""

    def __init__(self, db: Database, data_dir: Path, days: float, interval: float = CHECK_SECONDS) -> None:
        self.db = db
        self.data_dir = data_dir
        self.days = days
        self.interval = interval

    def run_once(self) -> int:
        if self.days <= 0:
            return 0
        return delete_finished_runs(self.db, self.data_dir, utcnow() - timedelta(days=self.days))

    async def loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set() and self.days > 0:
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("pipeline retention: pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.interval)
