"""The purge score, term by term, as Racetrack computes it."""

from __future__ import annotations

import pytest

from trackside.lifecycle.job_views import JobRow, portfolio_items
from trackside.lifecycle.purge import DAY_S, purge_verdict

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("status", "updated_days", "called_days", "newer", "score", "reason"),
    [
        ("running", 0, None, 0, 0.0, None),  # fresh and never called yet: nothing counts
        ("lost", 0, None, 0, 50.0, "lost"),
        ("error", 0, None, 0, 20.0, "failing"),
        ("running", 2, None, 0, 10.0, "never called"),
        ("running", 2, 0.5, 0, 0.0, None),  # called within the last day
        ("running", 2, 15, 0, 5.0, "last called 15 days ago"),
        ("running", 90, 60, 0, 10.0, "last called 60 days ago"),  # clamped at 30 days
        ("running", 0, None, 1, 1.0, "1 newer version exist"),
        ("running", 0, None, 9, 5.0, "9 newer versions exist"),  # clamped at 5
        ("lost", 40, None, 3, 63.0, "lost"),  # terms add up: 50 + 10 + 3
        ("error", 0.5, None, 0, 20.0, "failing"),  # updated under a day ago: no call terms
    ],
)
def test_purge_score_terms(
    status: str, updated_days: float, called_days: float | None, newer: int, score: float, reason: str | None
) -> None:
    called = None if called_days is None else NOW - called_days * DAY_S
    verdict = purge_verdict(status, NOW - updated_days * DAY_S, called, newer, NOW)
    assert verdict.score == score
    if reason is None:
        assert verdict.reasons == []
    else:
        assert any(reason in r for r in verdict.reasons), verdict.reasons


def _row(name: str, version: str, status: str = "running") -> JobRow:
    return JobRow(
        id=f"{name}-{version}",
        family_id=name,
        name=name,
        version=version,
        status=status,
        create_time=int(NOW),
        update_time=int(NOW),
        last_call_time=None,
        deployed_by="someone",
        owner_email=None,
        job_type="python3:latest",
        job_type_version="1.0.0",
        infrastructure_target="local",
        error=None,
        replicas=1,
    )


def test_the_portfolio_counts_newer_versions_by_semver_and_sorts_by_score() -> None:
    rows = [_row("a", "1.10.0"), _row("a", "1.2.0"), _row("a", "1.9.0"), _row("b", "0.1.0", status="error")]
    items = portfolio_items(rows, now=NOW)
    assert [(i["name"], i["version"], i["purge_newer_versions"], i["purge_score"]) for i in items] == [
        ("b", "0.1.0", 0, 20.0),
        ("a", "1.2.0", 2, 2.0),
        ("a", "1.9.0", 1, 1.0),
        ("a", "1.10.0", 0, 0.0),
    ]
