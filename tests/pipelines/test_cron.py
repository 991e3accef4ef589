"""Cron schedules: ticks in a timezone, concurrency policies, the missed-run deadline, firing once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.pipelines.conftest import local_settings
from tests.pipelines.support import OWNER, README_PIPELINE

from trackside.pipelines.cron import CronLoop, latest_tick, next_tick
from trackside.pipelines.models import PipelineRun
from trackside.pipelines.service import PipelineService
from trackside.store.base import utcnow
from trackside.store.database import Database


@pytest.fixture
def writer(tmp_path: Path, db: Database) -> PipelineService:
    """The service without its scheduler: runs it starts stay PENDING, which is what these tests need."""
    service = PipelineService(local_settings(tmp_path / "data"), db, run_scheduler=False)
    service.save_definition("nightly", README_PIPELINE, "tests")
    return service


def schedule(
    service: PipelineService, policy: str = "Allow", deadline: float | None = None, cron: str = "* * * * *"
) -> CronLoop:
    service.create_schedule(
        {
            "name": f"every-minute-{policy.lower()}",
            "pipeline": "nightly",
            "cron": cron,
            "timezone": "UTC",
            "concurrencyPolicy": policy,
            "startingDeadlineSeconds": deadline,
        },
        OWNER,
    )
    return CronLoop(service.db, service._start_scheduled, service.cancel_run)


def runs(db: Database) -> list[PipelineRun]:
    with db.session() as session:
        return list(session.scalars(select(PipelineRun).order_by(PipelineRun.created_at)))


def minute_after(now: datetime, minutes: int) -> datetime:
    return now.replace(second=5, microsecond=0) + timedelta(minutes=minutes)


def test_ticks_are_read_in_the_schedule_s_timezone() -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert latest_tick("30 2 * * *", "Asia/Tokyo", now) == datetime(2026, 3, 9, 17, 30, tzinfo=UTC)
    assert next_tick("0 3 * * *", "Europe/Warsaw", now) == datetime(2026, 3, 11, 2, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 10, 12, 0, tzinfo=UTC)
    assert next_tick("0 3 * * *", "Europe/Warsaw", summer) == datetime(2026, 7, 11, 1, 0, tzinfo=UTC)


def test_a_due_tick_starts_one_run_of_the_named_pipeline_and_fires_once(writer: PipelineService) -> None:
    loop = schedule(writer)
    now = minute_after(utcnow(), 2)
    [done] = loop.fire_due(now)
    assert "started run" in done
    assert loop.fire_due(now) == [] and loop.fire_due(now + timedelta(seconds=30)) == []
    [run] = runs(writer.db)
    assert (run.pipeline_name, run.pipeline_version, run.schedule_id is not None) == ("nightly", 1, True)
    assert "started run" in loop.fire_due(now + timedelta(minutes=1))[0]  # Allow: a second one beside it
    assert len(runs(writer.db)) == 2


def test_forbid_skips_a_tick_while_a_run_is_active(writer: PipelineService) -> None:
    loop = schedule(writer, "Forbid")
    now = minute_after(utcnow(), 2)
    loop.fire_due(now)
    [skipped] = loop.fire_due(now + timedelta(minutes=1))
    assert "skipped the tick" in skipped and "(Forbid)" in skipped
    assert len(runs(writer.db)) == 1


def test_replace_cancels_the_active_run_and_starts_a_new_one(writer: PipelineService) -> None:
    loop = schedule(writer, "Replace")
    now = minute_after(utcnow(), 2)
    loop.fire_due(now)
    loop.fire_due(now + timedelta(minutes=1))
    first, second = runs(writer.db)
    assert first.cancel_requested is not None and "replaced by a newer run" in first.cancel_requested
    assert second.cancel_requested is None


def test_a_tick_found_past_the_starting_deadline_is_recorded_as_missed(writer: PipelineService) -> None:
    loop = schedule(writer, deadline=30, cron="*/10 * * * *")
    late = next_tick("*/10 * * * *", "UTC", utcnow()) + timedelta(seconds=65)
    [missed] = loop.fire_due(late)
    assert "missed the tick" in missed and "startingDeadlineSeconds 30" in missed
    assert runs(writer.db) == []
