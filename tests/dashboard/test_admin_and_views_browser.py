"""The dashboard's views and administration in a real browser against a real `trackside up`: the
portfolio's filters with each of Racetrack's operators and delete from the table, the permissions
graph filtering on a click, an ESC and a grant made in the admin pages, maintenance mode blocking a
deploy with its banner on every page, and a non-staff user refused the admin pages.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import expect
from tests.dashboard.conftest import PASSWORD, admin_page, log_in, new_page
from tests.support.platform import RunningPlatform, deploy_and_wait, write_job

# Not marked `store`: the browser walks run once, on SQLite (they pass on PostgreSQL too, with
# TRACKSIDE_TEST_DATABASE=postgresql), which keeps the suite's second, PostgreSQL pass short.
pytestmark = [pytest.mark.slow, pytest.mark.browser]

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
    admin: Any, family: str, dash: RunningPlatform
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
    admin.fill("#expiry_days", "30")
    admin.get_by_role("button", name="Generate").click()
    expect(admin.locator("#token-issued")).to_contain_text("shown this once")
    expect(admin.locator("#esc-tokens tbody tr")).to_have_count(2)
    admin.locator("#esc-tokens tbody tr").first.get_by_role("button", name="Revoke").click()
    expect(admin.locator("#esc-tokens tbody tr").first).to_contain_text("revoked")
    assert (
        httpx.get(
            f"{dash.url}/lifecycle/api/v1/users/validate_user_auth", headers={"X-Racetrack-Auth": token}
        ).status_code
        == 401
    )

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


def test_the_jobs_table_shows_a_new_job_without_a_reload(
    admin: Any, dash: RunningPlatform, tmp_path_factory: pytest.TempPathFactory
) -> None:
    name = f"live-{uuid.uuid4().hex[:6]}"
    admin.goto(f"/dashboard/jobs?name={name}")
    expect(admin.locator("#no-jobs")).to_be_visible()
    root = tmp_path_factory.mktemp("live-job")
    assert deploy_and_wait(dash, write_job(root, name, JOB))["status"] == "done"
    expect(admin.locator(f'tr[data-job="{name} 0.0.1"] .status')).to_have_text("running", timeout=30_000)
    assert "/dashboard/jobs?name=" in admin.url  # the same page, updated in place


def test_staff_manage_plugins_manifests_users_and_the_platform_from_the_admin_pages(
    admin: Any, family: str, dash: RunningPlatform, tmp_path: Path
) -> None:
    from tests.plugins.support import make_zip, plugin_files

    # Platform: component health, reconcile.
    admin.goto("/dashboard/admin")
    expect(admin.locator("#health tbody tr")).to_have_count(2)
    expect(admin.locator("#health .status-running")).to_have_count(2)
    admin.get_by_role("button", name="Reconcile jobs now: reprovision every lost job").click()
    expect(admin.locator(".flash")).to_contain_text("Reconcile: 0 lost job(s)")

    # Plugins: upload, read its docs (raw HTML stays text), configure (YAML checked), download, delete.
    plugin = f"demo-{uuid.uuid4().hex[:6]}"
    source = (
        "class Plugin:\n    def markdown_docs(self):\n"
        "        return '# Demo\\n\\nIt **documents** itself. <script>alert(1)</script>'\n"
    )
    bundle = tmp_path / f"{plugin}.zip"
    bundle.write_bytes(make_zip(plugin_files(name=plugin, source=source)))
    admin.goto("/dashboard/admin/plugins")
    admin.set_input_files("#file", str(bundle))
    admin.get_by_role("button", name="Upload").click()
    expect(admin.locator(".flash")).to_have_text(f"Installed plugin {plugin} 1.0.0.")
    admin.goto(f"/dashboard/docs/plugins/{plugin}")
    expect(admin.locator("#doc strong")).to_have_text("documents")
    expect(admin.locator("#doc")).to_contain_text("<script>alert(1)</script>")
    admin.goto(f"/dashboard/admin/plugins/{plugin}/1.0.0/config")
    admin.fill("#config_data", "key: [unclosed")
    admin.get_by_role("button", name="Save").click()
    expect(admin.locator("#config_data-error")).to_contain_text("not valid YAML")
    admin.fill("#config_data", "key: value\n")
    admin.get_by_role("button", name="Save").click()
    expect(admin.locator(".flash")).to_contain_text(f"Configuration of {plugin} 1.0.0 saved")
    download = admin.request.get(f"{dash.url}/dashboard/admin/plugins/{plugin}/1.0.0/download")
    assert download.status == 200 and download.body()[:2] == b"PK"
    admin.get_by_role("button", name=f"Delete plugin {plugin} 1.0.0").click()
    expect(admin.locator(".flash")).to_have_text(f"Uninstalled plugin {plugin} 1.0.0.")

    # A job's manifest: validated as a deploy would (name and version stay), then saved and redeployed.
    admin.goto(f"/dashboard/admin/jobs/{family}/0.0.2/manifest")
    original = admin.input_value("#manifest_yaml")
    admin.fill("#manifest_yaml", original.replace(f"name: {family}", "name: renamed"))
    admin.get_by_role("button", name="Save and redeploy").click()
    expect(admin.locator("#manifest_yaml-error")).to_contain_text("immutable")
    admin.fill("#manifest_yaml", original + "runtime_env:\n  GREETING: hello\n")
    admin.get_by_role("button", name="Save and redeploy").click()
    expect(admin.locator("#deployment-done")).to_be_visible(timeout=180_000)
    job = dash.http.get(f"{dash.api}/job/{family}/0.0.2").json()
    assert job["manifest"]["runtime_env"] == {"GREETING": "hello"}

    # Users: a bad password is refused by that user's field; make staff, set a password, delete.
    username = make_user(dash)
    admin.goto("/dashboard/admin/users")
    row = admin.locator(f'tr[data-user="{username}"]')
    row.get_by_placeholder("new password").fill("short")
    row.get_by_role("button", name="Set password").click()
    expect(admin.locator(f'tr[data-user="{username}"] #password-error')).to_contain_text("too short")
    admin.locator(f'tr[data-user="{username}"]').get_by_placeholder("new password").fill("Another-Long-Pass-9")
    admin.locator(f'tr[data-user="{username}"]').get_by_role("button", name="Set password").click()
    expect(admin.locator(".flash")).to_have_text(f"Password of {username} set.")
    admin.get_by_role("button", name=f"Make {username} staff").click()
    expect(admin.locator(f'tr[data-user="{username}"] td').nth(2)).to_have_text("yes")
    admin.get_by_role("button", name=f"Delete {username}").click()
    expect(admin.locator(".flash")).to_have_text(f"User {username} deleted.")
    expect(admin.locator(f'tr[data-user="{username}"]')).to_have_count(0)

    admin.goto("/dashboard/admin/public-endpoints")
    expect(admin.get_by_role("heading", level=1)).to_have_text("Public endpoint requests")


def test_a_user_who_may_read_one_family_sees_only_it_in_every_view(
    dash: RunningPlatform, family: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    hidden = f"hidden-{uuid.uuid4().hex[:6]}"
    assert deploy_and_wait(dash, write_job(tmp_path_factory.mktemp("hidden"), hidden, JOB))["status"] == "done"
    username = make_user(dash)
    for grant in dash.http.get(f"{dash.api}/permissions").json():
        if grant["subject"] == username and grant["scope"] == "read_job":
            assert dash.http.delete(f"{dash.api}/permissions/{grant['id']}").status_code == 200
    body = {"subject_type": "user", "subject": username, "scope": "read_job", "job_family": family}
    assert dash.http.post(f"{dash.api}/permissions", json=body).status_code == 201
    login = httpx.post(f"{dash.api}/users/login", json={"username": username, "password": PASSWORD}, timeout=30)
    token = login.json()["token"]
    with httpx.Client(base_url=dash.url, headers={"X-Racetrack-Auth": token}, timeout=30) as api:
        table = api.get("/lifecycle/api/v1/jobs/table").json()
        assert {f["name"] for f in table["families"]} == {family}
        portfolio = api.get("/lifecycle/api/v1/jobs/portfolio").json()
        assert {i["name"] for i in portfolio["items"]} == {family}
        graph = api.get("/lifecycle/api/v1/job/graph").json()
        assert not any(hidden in n["title"] for n in graph["nodes"])
        assert not any(n["type"] == "user" and n["title"] != username for n in graph["nodes"])
        deployments = api.get("/lifecycle/api/v1/deployments").json()["items"]
        assert all(d["job_name"] == family for d in deployments)
    with httpx.Client(base_url=dash.url, cookies={"X-Racetrack-Auth": quote(token, safe="")}, timeout=30) as web:
        page = web.get("/dashboard/jobs")
        assert family in page.text and hidden not in page.text
        refused = web.get(f"/dashboard/jobs/{hidden}/0.0.1")
        assert refused.status_code == 403 and "read_job" in refused.text
