"""Run retention: finished runs past `pipeline_run_retention_days` go, with their steps, events and
files; recent and active runs stay."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, update
from tests.pipelines.support import OWNER, wait_for_run_in_store
from tests.support.polling import wait_until

from trackside.pipelines.models import PipelineEvent, PipelineRun, PipelineStep
from trackside.pipelines.retention import RetentionLoop
from trackside.pipelines.service import PipelineService
from trackside.store.models import utcnow


def _count(service: PipelineService, model: type, run_id: str) -> int:
    with service.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(model.run_id == run_id)) or 0)  # type: ignore[attr-defined]


def test_finished_runs_older_than_the_retention_are_deleted_with_their_steps_events_and_files(
    service: PipelineService, tmp_path: Path
) -> None:
    body = {"kind": "Pipeline", "jobs": {"a": {"image": "b", "run": "echo hi"}}}
    old, recent = service.submit(body, OWNER), service.submit(body, OWNER)
    flag = tmp_path / "go"
    active = service.submit(
        {"kind": "Pipeline", "jobs": {"w": {"image": "b", "run": f"until [ -e '{flag}' ]; do sleep 0.05; done"}}}, OWNER
    )
    for uid in (old, recent):
        assert wait_for_run_in_store(service.db, uid)["status"] == "SUCCESSFUL"
    wait_until(lambda: _count(service, PipelineEvent, active) >= 2, what="the active run's step to start")
    files = service.settings.data_dir / "pipelines" / "runs"
    assert (files / old).is_dir()
    with service.db.session() as session:
        session.execute(
            update(PipelineRun).where(PipelineRun.id == old).values(finished_at=utcnow() - timedelta(days=8))
        )
        session.execute(
            update(PipelineRun).where(PipelineRun.id == recent).values(finished_at=utcnow() - timedelta(days=6))
        )

    assert RetentionLoop(service.db, service.settings.data_dir, days=0).run_once() == 0  # 0: keep forever
    assert RetentionLoop(service.db, service.settings.data_dir, days=7).run_once() == 1

    with service.db.session() as session:
        assert session.get(PipelineRun, old) is None
        assert session.get(PipelineRun, recent) is not None and session.get(PipelineRun, active) is not None
    assert _count(service, PipelineStep, old) == 0 and _count(service, PipelineEvent, old) == 0
    assert _count(service, PipelineStep, recent) == 1 and _count(service, PipelineEvent, recent) > 0
    assert not (files / old).exists() and (files / recent).is_dir()
    flag.touch()
    assert wait_for_run_in_store(service.db, active)["status"] == "SUCCESSFUL"
