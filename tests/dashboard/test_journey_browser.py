"""A user's whole walk through the dashboard in a real browser, against a real `trackside up`:
register, get activated by an admin, log in, deploy examples/adder from the form and watch it
become running, call it from its Swagger page, follow its logs, see its call chart move, redeploy,
try to move it (only one target here: the form says so), delete it. The screenshots the README shows
are taken on the way.
"""

from __future__ import annotations

import io
import re
import tarfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from playwright.sync_api import expect
from tests.dashboard.conftest import PASSWORD, SCREENSHOTS, admin_page, log_in, new_page
from tests.support.platform import RunningPlatform

# Not marked `store`: the browser walks run once, on SQLite (they pass on PostgreSQL too, with
# TRACKSIDE_TEST_DATABASE=postgresql), which keeps the suite's second, PostgreSQL pass short.
pytestmark = [pytest.mark.slow, pytest.mark.browser]

ADDER = Path(__file__).resolve().parents[2] / "examples" / "adder"


def adder_tarball(directory: Path) -> Path:
    """examples/adder as the .tar.gz a user uploads with the deploy form."""
    path = directory / "adder.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for item in sorted(ADDER.iterdir()):
            tar.add(item, arcname=item.name)
    path.write_bytes(buffer.getvalue())
    return path


def test_a_user_registers_is_activated_deploys_calls_follows_and_deletes_a_job(
    dash: RunningPlatform, browser: Any, tmp_path: Path
) -> None:
    username = f"walker-{uuid.uuid4().hex[:8]}@example.com"
    user = new_page(browser, dash)

    # Register: the form's errors sit by their field, then the account waits for activation.
    user.goto("/dashboard/register")
    user.fill("#username", username)
    user.fill("#password", "12345678")
    user.fill("#password_again", "12345678")
    user.get_by_role("button", name="Register").click()
    expect(user.locator("#password-error")).to_contain_text("entirely numeric")
    user.fill("#password", PASSWORD)
    user.fill("#password_again", PASSWORD)
    user.get_by_role("button", name="Register").click()
    expect(user.locator("#registered")).to_contain_text("administrator must activate it")

    # Not active yet: logging in says so.
    user.goto("/dashboard/login")
    user.fill("#username", username)
    user.fill("#password", PASSWORD)
    user.get_by_role("button", name="Log in").click()
    expect(user.get_by_role("alert")).to_contain_text("not active yet")

    # An admin activates the account in the admin pages.
    admin = admin_page(browser, dash)
    admin.goto("/dashboard/admin/users")
    admin.get_by_role("button", name=f"Activate {username}").click()
    expect(admin.locator(f'tr[data-user="{username}"] td').nth(1)).to_have_text("yes")

    # Log in, deploy examples/adder from the form, and watch the deployment finish live.
    log_in(user, username, PASSWORD)
    user.goto("/dashboard/deployments/new")
    user.fill("#manifest", (ADDER / "job.yaml").read_text())
    user.set_input_files("#build_context", str(adder_tarball(tmp_path)))
    user.get_by_role("button", name="Deploy").click()
    expect(user).to_have_url(re.compile(r"/dashboard/deployments/[0-9a-f-]+$"))
    expect(user.locator("#deployment-done")).to_be_visible(timeout=180_000)
    user.get_by_role("link", name="Open job adder 0.0.1").click()
    expect(user.locator("h1 .status")).to_have_text("running")
    expect(user.locator("#calls-summary")).to_contain_text("0 requests")

    # Call it from its Swagger page (the session cookie is the token).
    user.locator("#swagger-link").click()
    expect(user.locator("#ops")).to_contain_text("/api/v1/perform")
    user.get_by_role("button", name="Try it").first.click()
    expect(user.locator("pre.out").first).to_contain_text("HTTP 200")
    expect(user.locator("pre.out").first).to_contain_text("42")
    user.go_back()

    # Follow its logs: a call made now shows up as a new line; the call chart moves.
    job_url = user.url
    expect(user.locator("#calls-summary")).not_to_contain_text("Waiting")
    user.get_by_role("button", name="Follow live").click()
    expect(user.get_by_role("button", name="Stop following")).to_be_visible()
    marker = f"marker-{uuid.uuid4().hex[:6]}"
    cookies = {c["name"]: c["value"] for c in user.context.cookies()}
    token = unquote(cookies["X-Racetrack-Auth"])
    with httpx.Client(headers={"X-Racetrack-Auth": token}, timeout=30) as client:
        for _ in range(3):
            response = client.post(f"{dash.url}/pub/job/adder/0.0.1/api/v1/perform?{marker}=1", json={"a": 1, "b": 2})
            assert response.status_code == 200, response.text
    expect(user.locator("#runtime-logs")).to_contain_text(marker, timeout=30_000)
    expect(user.locator("#calls-summary")).to_have_attribute("data-total", re.compile(r"^[1-9]\d*$"), timeout=30_000)
    expect(user.locator("#calls-charts figure")).to_have_count(3)
    user.screenshot(path=str(SCREENSHOTS / "dashboard-job.png"), full_page=True)

    user.goto("/dashboard/jobs")
    expect(user.locator('tr[data-job="adder 0.0.1"] .status')).to_have_text("running")
    user.screenshot(path=str(SCREENSHOTS / "dashboard-jobs.png"))

    # Redeploy: a new deployment, followed to the end.
    user.goto(job_url)
    user.get_by_role("button", name="Redeploy").click()
    expect(user.locator("#deployment-done")).to_be_visible(timeout=180_000)

    # Reprovision: the same build started again, followed the same way.
    user.goto(job_url)
    user.get_by_role("button", name="Reprovision").click()
    expect(user.locator("h1")).to_contain_text("Reprovision of adder 0.0.1")
    expect(user.locator("#deployment-done")).to_be_visible(timeout=180_000)

    # Move: this platform has one target, and the form says so next to the field.
    user.goto(job_url)
    expect(user.locator("#infrastructure_target-help")).to_contain_text("Only local is available")
    user.fill("#infrastructure_target", "docker")
    user.get_by_role("button", name="Move").click()
    expect(user.locator("#infrastructure_target-error")).to_contain_text("'docker' is not available")
    expect(user.locator("#infrastructure_target")).to_have_attribute("aria-invalid", "true")

    # Delete, after a confirmation that names the job.
    user.goto(job_url)
    user.get_by_role("link", name="Delete…").click()
    expect(user.get_by_role("heading", level=1)).to_have_text("Delete job adder 0.0.1?")
    user.get_by_role("button", name="Delete adder 0.0.1").click()
    expect(user.locator(".flash")).to_have_text("Deleted job adder 0.0.1.")
    expect(user.locator('tr[data-job="adder 0.0.1"]')).to_have_count(0)

    # Every change landed in the audit log, "related to me" included.
    user.goto("/dashboard/audit?related_to_me=1")
    events = user.locator("#audit-events")
    for kind in ("job_deployed", "job_redeployed", "job_deleted"):
        expect(events).to_contain_text(kind)
    user.context.close()
    admin.context.close()
