"""The administration's forms over plain HTTP (no browser): one-button forms act only once the form's
CSRF token checks out, and one-field edit forms come back with the API's refusal beside the field."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import EXAMPLES
from tests.support.platform import RunningPlatform, deploy_and_wait

pytestmark = pytest.mark.slow

CSRF_COOKIE = "trackside_csrf"


@pytest.fixture
def staff(platform: RunningPlatform) -> Iterator[tuple[httpx.Client, str]]:
    """A client logged in to the dashboard as the first admin, and its CSRF token."""
    with httpx.Client(base_url=f"{platform.url}/dashboard", timeout=60, follow_redirects=False) as client:
        client.get("/login").raise_for_status()
        csrf = client.cookies[CSRF_COOKIE]
        login = client.post(
            "/login", data={"username": "admin", "password": platform.admin_password, "csrf_token": csrf}
        )
        assert login.status_code == 303, login.text
        yield client, csrf


def test_a_revoke_acts_once_the_form_checks_out(platform: RunningPlatform, staff: tuple[httpx.Client, str]) -> None:
    client, csrf = staff
    api = platform.http
    esc = api.post(f"{platform.api}/escs", json={"name": "forms-esc"})
    assert esc.status_code == 201, esc.text
    platform.secrets.add(esc.json()["token"])
    granted = api.post(
        f"{platform.api}/permissions", json={"subject_type": "esc", "subject": esc.json()["id"], "scope": "call_job"}
    )
    assert granted.status_code == 201, granted.text
    mine = [p["id"] for p in api.get(f"{platform.api}/permissions").json() if p["subject_type"] == "esc"]
    assert len(mine) == 1

    forged = client.post(f"/admin/permissions/{mine[0]}/revoke", data={"csrf_token": "not-it"})
    assert forged.status_code == 403
    assert [p["id"] for p in api.get(f"{platform.api}/permissions").json()].count(mine[0]) == 1

    revoked = client.post(f"/admin/permissions/{mine[0]}/revoke", data={"csrf_token": csrf})
    assert (revoked.status_code, revoked.headers["location"]) == (303, "/dashboard/admin/permissions")
    assert mine[0] not in [p["id"] for p in api.get(f"{platform.api}/permissions").json()]


def test_a_manifest_edit_comes_back_with_the_refusal_or_saves(
    platform: RunningPlatform, staff: tuple[httpx.Client, str]
) -> None:
    client, csrf = staff
    deployed = deploy_and_wait(platform, EXAMPLES / "adder")
    assert deployed["status"] == "done", deployed
    form = "/admin/jobs/adder/0.0.1/manifest"
    manifest = platform.http.get(f"{platform.api}/job/adder/0.0.1").json()["manifest_yaml"]

    renamed = client.post(form, data={"manifest_yaml": manifest.replace("adder", "subtractor"), "csrf_token": csrf})
    assert renamed.status_code == 400
    assert "name and version are immutable" in renamed.text

    edited = manifest + "\nlabels:\n  edited: 'yes'\n"
    saved = client.post(form, data={"manifest_yaml": edited, "csrf_token": csrf})
    assert (saved.status_code, saved.headers["location"]) == (303, "/dashboard/jobs/adder/0.0.1")
    assert "edited" in platform.http.get(f"{platform.api}/job/adder/0.0.1").json()["manifest_yaml"]
