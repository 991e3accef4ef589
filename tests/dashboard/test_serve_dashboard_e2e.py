"""`trackside serve dashboard` alone, a client of a lifecycle at another URL: log in and see the jobs."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from tests.support.platform import RunningPlatform, start_trackside

pytestmark = [pytest.mark.slow]


def test_the_dashboard_runs_alone_against_a_lifecycle_url(platform: RunningPlatform, tmp_path: Path) -> None:
    dashboard = start_trackside(
        ["serve", "dashboard", "--lifecycle-url", f"{platform.url}/lifecycle"],
        tmp_path / "dashboard-data",
        "sqlite:///unused.db",
        health_path="/dashboard/login",
    )
    try:
        with httpx.Client(base_url=dashboard.url, timeout=30) as client:
            assert client.get("/").headers["location"] == "/dashboard/jobs"
            login = client.get("/dashboard/login")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
            assert csrf is not None
            form = {"csrf_token": csrf.group(1), "username": "admin", "password": platform.admin_password}
            answer = client.post("/dashboard/login", data=form)
            assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/jobs"
            jobs = client.get("/dashboard/jobs")
            assert jobs.status_code == 200 and "0 of 0 jobs" in jobs.text
            # Nothing but the dashboard is served here.
            assert client.get("/lifecycle/api/v1/info").status_code == 404
            # A forged form is refused before it reaches the API.
            assert client.post("/dashboard/logout", data={"csrf_token": "forged"}).status_code == 403
    finally:
        dashboard.stop()
