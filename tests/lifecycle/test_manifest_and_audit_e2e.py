"""Online manifest edits (Racetrack's PUT .../manifest) and the audit events of edits and plugins."""

from __future__ import annotations

import pytest
import yaml
from tests.conftest import EXAMPLES
from tests.plugins.support import make_zip, plugin_files
from tests.support.platform import RunningPlatform, deploy_and_wait, wait_for_deployment
from tests.test_safe_yaml import alias_bomb

from trackside.safe_yaml import MAX_EXPANDED_SIZE

pytestmark = pytest.mark.slow


def event_types(platform: RunningPlatform, path: str = "/audit/events") -> list[str]:
    return [event["event_type"] for event in platform.http.get(f"{platform.api}{path}").json()]


def test_an_edited_manifest_is_stored_audited_and_used_by_the_next_redeploy(platform: RunningPlatform) -> None:
    assert deploy_and_wait(platform, EXAMPLES / "adder")["status"] == "done"
    manifest = yaml.safe_load(platform.http.get(f"{platform.api}/job/adder/0.0.1").json()["manifest_yaml"])
    manifest["runtime_env"] = {"GREETING": "edited"}
    response = platform.http.put(
        f"{platform.api}/job/adder/0.0.1/manifest", json={"manifest_yaml": yaml.safe_dump(manifest)}
    )
    assert response.status_code == 200, response.text
    assert response.json()["manifest"]["runtime_env"] == {"GREETING": "edited"}
    assert "manifest_updated" in event_types(platform, "/audit/events/job/adder/0.0.1")

    redeploy = platform.http.post(f"{platform.api}/job/adder/0.0.1/redeploy")
    result = wait_for_deployment(platform.api, redeploy.json()["id"])
    assert result["status"] == "done", result
    assert "GREETING: edited" in result["manifest_yaml"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [({"name": "other"}, "immutable"), ({"version": "9.9.9"}, "immutable"), ({"colour": "red"}, "colour")],
)
def test_a_manifest_edit_that_changes_identity_or_is_invalid_is_refused(
    platform: RunningPlatform, change: dict, expected: str
) -> None:
    assert deploy_and_wait(platform, EXAMPLES / "adder")["status"] == "done"
    before = platform.http.get(f"{platform.api}/job/adder/0.0.1").json()["manifest_yaml"]
    manifest = {**yaml.safe_load(before), **change}
    response = platform.http.put(
        f"{platform.api}/job/adder/0.0.1/manifest", json={"manifest_yaml": yaml.safe_dump(manifest)}
    )
    assert response.status_code == 400
    assert expected in response.json()["error"]
    assert platform.http.get(f"{platform.api}/job/adder/0.0.1").json()["manifest_yaml"] == before


def test_a_manifest_edit_with_an_alias_bomb_is_refused_fast_with_the_limit_named(platform: RunningPlatform) -> None:
    assert deploy_and_wait(platform, EXAMPLES / "adder")["status"] == "done"
    before = platform.http.get(f"{platform.api}/job/adder/0.0.1").json()["manifest_yaml"]
    bomb = before + "labels:\n" + alias_bomb(indent="  ")
    response = platform.http.put(f"{platform.api}/job/adder/0.0.1/manifest", json={"manifest_yaml": bomb})
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "InvalidInput"
    assert f"YAML expands beyond the limit of {MAX_EXPANDED_SIZE}" in response.json()["error"]
    assert platform.http.get(f"{platform.api}/job/adder/0.0.1").json()["manifest_yaml"] == before


def test_installing_and_uninstalling_a_plugin_are_audit_events(platform: RunningPlatform) -> None:
    bundle = make_zip(plugin_files(name="audited", version="1.2.3"))
    installed = platform.http.post(f"{platform.api}/plugin/upload/audited-1.2.3.zip", content=bundle)
    assert installed.status_code == 200, installed.text
    assert platform.http.delete(f"{platform.api}/plugin/audited/1.2.3").status_code == 200
    events = platform.http.get(f"{platform.api}/audit/events").json()
    plugin_events = [
        (e["event_type"], e["properties"].get("plugin_name")) for e in events if e["event_type"].startswith("plugin_")
    ]
    assert ("plugin_installed", "audited") in plugin_events
    assert ("plugin_uninstalled", "audited") in plugin_events
