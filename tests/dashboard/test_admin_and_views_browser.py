"""The dashboard's views and administration in a real browser against a real `trackside up`: the
portfolio's filters with each of Racetrack's operators and delete from the table, the permissions
graph filtering on a click, an ESC and a grant made in the admin pages, maintenance mode blocking a
deploy with its banner on every page, and a non-staff user refused the admin pages.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import expect
from tests.dashboard.conftest import PASSWORD, admin_page, log_in, new_page
from tests.support.platform import RunningPlatform, deploy_and_wait, write_job

pytestmark = [pytest.mark.slow, pytest.mark.store, pytest.mark.browser]

JOB = "class Job:\n    def perform(self):\n        return 1\n"


@pytest.fixture(scope="module")
def family(dash: RunningPlatform, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A job family with two versions (the older one has a newer version: purge score 1)."""
    name = f"pf-{uuid.uuid4().hex[:6]}"
    root = tmp_path_factory.mktemp("portfolio-jobs")
    for version in ("0.0.1", "0.0.2"):
        result = deploy_and_wait(dash, write_job(root / version, name, JOB, version=version))
        assert result["status"] == "done", result
    return name


@pytest.fixture(scope="module")
def admin(browser: Any, dash: RunningPlatform) -> Iterator[Any]:
    page = admin_page(browser, dash)
    yield page
    page.context.close()


def make_user(dash: RunningPlatform, active: bool = True) -> str:
    username = f"user-{uuid.uuid4().hex[:8]}@example.com"
    body = {"username": username, "password": PASSWORD, "is_active": active}
    response = dash.http.post(f"{dash.api}/users", json=body)
    assert response.status_code == 201, response.text
    return username


def portfolio_rows(page: Any, family: str, **filters: str) -> list[str]:
    query = "&".join(f"filter_{k}={quote(v, safe='')}" for k, v in filters.items())
    page.goto(f"/dashboard/portfolio?filter_name={quote(family)}&{query}")
    return sorted(page.locator("#portfolio-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.job)"))


def test_the_portfolio_filters_with_each_operator_and_deletes_from_the_table(
    admin: Any, family: str, dash: RunningPlatform
) -> None:
    both = [f"{family} 0.0.1", f"{family} 0.0.2"]
    old, new = [both[0]], [both[1]]
    # Typed into the column's filter, as a person would.
    admin.goto("/dashboard/portfolio")
    admin.fill("#filter_name", family)
    admin.fill("#filter_version", "=0.0.1")
    admin.press("#filter_version", "Enter")
    expect(admin.locator("#portfolio-table tbody tr")).to_have_count(1)
    expect(admin.locator("#portfolio-table tbody tr td").nth(4)).to_contain_text("1 newer version")
    cases: list[tuple[dict[str, str], list[str]]] = [
        ({"version": "0.0"}, both),  # contains
        ({"version": "=0.0.2"}, new),
        ({"version": "*.2"}, new),
        ({"version": "!0.0.1"}, new),
        ({"version": "{0.0.1, 0.0.9}"}, old),
        ({"purge_score": ">0"}, old),
        ({"purge_score": ">=0"}, both),
        ({"purge_score": "<1"}, new),
        ({"purge_score": "<=1"}, both),
        ({"version": "=0.0.1 || =0.0.2"}, both),
        ({"version": "0.0 && !=0.0.2"}, old),
        ({"last_call_time_days_ago": "[empty]"}, both),
        ({"deployed_by": "[nonempty]"}, both),
        ({"deployed_by": "[empty]"}, []),
        ({"version": r"rgx:^0\.0\.[2-9]$"}, new),
    ]
    for filters, expected in cases:
        assert portfolio_rows(admin, family, **filters) == expected, filters
    # A malformed filter is reported next to its own field.
    admin.goto(f"/dashboard/portfolio?filter_version={quote('rgx:(')}")
    expect(admin.locator("#filter_version-error")).to_contain_text("invalid regular expression")
    expect(admin.locator("#filter_version")).to_have_attribute("aria-invalid", "true")
    # Delete from the table: confirm, and come back to the same filtered portfolio.
    portfolio_rows(admin, family, version="=0.0.1")
    admin.get_by_role("link", name="Delete…").click()
    admin.get_by_role("button", name=f"Delete {family} 0.0.1").click()
    expect(admin.locator(".flash")).to_have_text(f"Deleted job {family} 0.0.1.")
    expect(admin).to_have_url(
        f"{dash.url}/dashboard/portfolio?filter_name={family}&filter_version=%3D0.0.1&sort=-purge_score&page=1"
    )
    expect(admin.locator("#portfolio-table tbody tr")).to_have_count(0)


def test_an_esc_gets_a_token_once_and_a_grant_that_the_graph_shows_and_filters_on_click(
    admin: Any, family: str
) -> None:
    esc_name = f"billing-{uuid.uuid4().hex[:6]}"
    admin.goto("/dashboard/admin/escs")
    admin.fill("#name", "   ")  # blank: the API refuses it, and its error sits by the field
    admin.get_by_role("button", name="Create").click()
    expect(admin.locator("#name-error")).to_contain_text("name:")
    expect(admin.locator("#name")).to_have_attribute("aria-invalid", "true")
    admin.fill("#name", esc_name)
    admin.get_by_role("button", name="Create").click()
    expect(admin.locator("#esc-created")).to_contain_text("shown this once")
    token = admin.locator("#esc-token").inner_text()
    assert token.count(".") == 2  # a JWT
    admin.get_by_role("link", name=esc_name).click()
    expect(admin.locator("#esc-tokens tbody tr")).to_have_count(1)
    assert token not in admin.content()  # listed, never shown again

    admin.goto("/dashboard/admin/permissions")
    admin.select_option("#subject_type", "esc")
    admin.fill("#subject", esc_name)
    admin.select_option("#scope", "call_job")
    admin.select_option("#job_family", family)
    admin.fill("#job_version", "9.9.9")
    admin.get_by_role("button", name="Grant").click()
    expect(admin.locator("#job_version-error")).to_contain_text("has no version '9.9.9'")
    admin.fill("#job_version", "")
    admin.get_by_role("button", name="Grant").click()
    expect(admin.locator(".flash")).to_contain_text(f"Granted call_job to ESC {esc_name}")

    admin.goto("/dashboard/graph")
    graph = admin.locator("#graph")
    expect(graph).to_have_attribute("data-nodes", re.compile(r"^\d+$"))
    total = int(graph.get_attribute("data-nodes") or 0)
    assert total >= 3  # the ESC, the family, the admin (and "every family")
    esc_id = admin.evaluate(
        "name => window.tracksideGraph.nodes().filter(n => n.data('label') === name)[0].id()", esc_name
    )
    position = admin.evaluate("id => window.tracksideGraph.getElementById(id).renderedPosition()", esc_id)
    box = graph.bounding_box()
    assert box is not None
    admin.mouse.click(box["x"] + position["x"], box["y"] + position["y"])
    expect(graph).to_have_attribute("data-visible", "2")  # the ESC and its one family
    expect(admin.locator("#graph-edges")).to_contain_text(f"{esc_name} → {family}: call_job")
    admin.get_by_role("button", name="Show every node").click()
    expect(graph).to_have_attribute("data-visible", str(total))


def test_maintenance_mode_shows_its_banner_and_blocks_a_deploy_from_the_form(
    admin: Any, browser: Any, dash: RunningPlatform
) -> None:
    user = new_page(browser, dash)
    log_in(user, make_user(dash), PASSWORD)
    admin.goto("/dashboard/admin")
    admin.get_by_role("button", name="Switch maintenance mode on").click()
    try:
        expect(admin.locator("#maintenance-banner")).to_be_visible()
        user.goto("/dashboard/deployments/new")
        expect(user.locator("#maintenance-banner")).to_be_visible()
        user.fill("#manifest", "name: blocked\nowner_email: a@example.com\nversion: 0.0.1\njobtype: python3:latest\n")
        user.get_by_role("button", name="Deploy").click()
        expect(user.locator("#form-error")).to_contain_text("maintenance mode")
    finally:
        admin.goto("/dashboard/admin")
        admin.get_by_role("button", name="Switch maintenance mode off").click()
    expect(admin.locator("#maintenance-state")).to_contain_text("off")
    user.goto("/dashboard/jobs")
    expect(user.locator("#maintenance-banner")).to_have_count(0)
    user.context.close()


def test_a_non_staff_user_gets_a_403_page_on_every_admin_page_and_no_admin_link(
    browser: Any, dash: RunningPlatform
) -> None:
    user = new_page(browser, dash)
    log_in(user, make_user(dash), PASSWORD)
    expect(user.get_by_role("link", name="Admin")).to_have_count(0)
    for path in ("/admin", "/admin/users", "/admin/escs", "/admin/permissions", "/admin/plugins"):
        response = user.goto(f"/dashboard{path}")
        assert response is not None and response.status == 403, path
        expect(user.locator("#error-message")).to_contain_text("for staff")
        expect(user.get_by_role("navigation", name="Main")).to_be_visible()  # a whole page, not a broken one
    # Their forms are no way around it either: a staff-only POST is refused the same way.
    csrf = next(c["value"] for c in user.context.cookies() if c["name"] == "trackside_csrf")
    response = user.request.post(f"{dash.url}/dashboard/admin/maintenance", form={"csrf_token": csrf, "enabled": "1"})
    assert response.status == 403
    with httpx.Client(timeout=10) as client:
        assert client.get(f"{dash.api}/settings/maintenance", headers=dash.auth).json()["maintenance_mode"] is False
    user.context.close()


def test_a_form_posted_without_its_csrf_token_is_refused(browser: Any, dash: RunningPlatform) -> None:
    user = new_page(browser, dash)
    log_in(user, make_user(dash), PASSWORD)
    response = user.request.post(f"{dash.url}/dashboard/profile/token", form={"csrf_token": "forged"})
    assert response.status == 403
    assert "form expired or came from another site" in response.text()
    user.context.close()


def test_the_user_guide_and_profile_render_for_a_user(browser: Any, dash: RunningPlatform) -> None:
    user = new_page(browser, dash, width=390, height=844)  # a phone
    username = make_user(dash)
    log_in(user, username, PASSWORD)
    user.goto("/dashboard/docs")
    expect(user.locator("#doc h1")).to_have_text("Deploying a job")
    user.get_by_role("link", name="Permissions", exact=True).click()
    expect(user.locator("#doc")).to_contain_text("deploy_new_family")
    user.goto("/dashboard/profile")
    expect(user.locator("#trackside-login")).to_contain_text("trackside login ey")
    expect(user.locator("#racetrack-login")).to_contain_text(f"--remote {dash.url}")
    user.context.close()
