"""The `/plugin` endpoints on a real `trackside up`: install, list, docs, config, run, download, uninstall."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from tests.plugins.support import EXAMPLE_PLUGINS, make_zip, plugin_files
from tests.support.platform import RunningPlatform, deploy_directory, write_job

from trackside.plugins.bundle import bundle_plugin
from trackside.plugins.store import PluginStore

pytestmark = pytest.mark.slow

ACTION_PLUGIN = """
class Plugin:
    def markdown_docs(self):
        return '# Demo plugin'

    def run_action(self, who='world', times=1):
        return {'greeting': ('hello ' + who + ' ') * int(times)}
"""

POLICY_PLUGIN = """
class Plugin:
    def validate_job_manifest(self, manifest):
        if not manifest.name.startswith('team-'):
            raise ValueError(f"job name {manifest.name!r} must start with 'team-'")
"""


def upload(
    platform: RunningPlatform, data: bytes, filename: str = "plugin.zip", replace: bool = False
) -> httpx.Response:
    return platform.http.post(
        f"{platform.api}/plugin/upload/{filename}", params={"replace": int(replace)}, content=data, timeout=120
    )


def test_static_job_type_installs_without_restart_and_uninstall_removes_it(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    bundle = bundle_plugin(EXAMPLE_PLUGINS / "static-job-type", out_dir=tmp_path)
    installed = upload(platform, bundle.read_bytes(), bundle.name)
    assert installed.status_code == 200, installed.text
    assert installed.json()["name"] == "static-job-type" and installed.json()["build_date"]

    listed = httpx.get(f"{platform.api}/plugin").json()
    assert [(p["name"], p["version"], p["category"]) for p in listed] == [("static-job-type", "1.0.0", "job-type")]
    versions = httpx.get(f"{platform.api}/plugin/job_type/versions").json()
    assert "static:1.0.0" in versions and "python3:1.0.0" in versions
    tree = {p["name"]: p for p in httpx.get(f"{platform.api}/plugin/tree").json()}
    assert tree["static-job-type"]["job_types"] == [{"name": "static:1.0.0", "active_jobs": 0}]
    assert tree["local-infrastructure"]["infrastructure_targets"][0]["name"] == "local"
    assert httpx.get(f"{platform.api}/plugin/infrastructure_targets").json()["local"]["name"] == "local-infrastructure"
    assert "static job type" in httpx.get(f"{platform.api}/plugin/static-job-type/docs").json()

    downloaded = httpx.get(f"{platform.api}/plugin/static-job-type/1.0.0/download")
    assert downloaded.status_code == 200
    assert downloaded.content == bundle.read_bytes()
    assert downloaded.headers["content-type"] == "application/zip"

    deleted = platform.http.delete(f"{platform.api}/plugin/static-job-type/1.0.0")
    assert deleted.status_code == 200, deleted.text
    assert "static:1.0.0" not in httpx.get(f"{platform.api}/plugin/job_type/versions").json()
    assert httpx.get(f"{platform.api}/plugin").json() == []
    missing = platform.http.delete(f"{platform.api}/plugin/static-job-type/1.0.0")
    assert missing.status_code == 404 and "not installed" in missing.json()["error"]


def test_a_change_made_by_another_process_is_picked_up_within_seconds(platform: RunningPlatform) -> None:
    source = (
        "from trackside.build.jobtype import JobType\nclass Plugin:\n    def job_types(self):\n"
        "        return {'elixir:0.1.0': JobType(name='elixir', version='0.1.0')}\n"
    )
    store = PluginStore(platform.data_dir / "plugins")  # another process writing the shared plugins dir
    store.install(make_zip(plugin_files("elixir-job-type", "0.1.0", source)))
    started = time.monotonic()
    while "elixir:0.1.0" not in httpx.get(f"{platform.api}/plugin/job_type/versions").json():
        assert time.monotonic() - started < 5, "the running platform did not notice the install"
        time.sleep(0.1)
    store.uninstall("elixir-job-type", "0.1.0")
    while "elixir:0.1.0" in httpx.get(f"{platform.api}/plugin/job_type/versions").json():
        assert time.monotonic() - started < 10, "the running platform did not notice the uninstall"
        time.sleep(0.1)


def test_multipart_upload_config_run_action_and_delete_all(platform: RunningPlatform) -> None:
    data = make_zip({**plugin_files("demo", "1.0.0", ACTION_PLUGIN), "config.yaml": "greeting: hi\n"})
    response = platform.http.post(f"{platform.api}/plugin/upload", files={"file": ("demo-1.0.0.zip", data)}, timeout=60)
    assert response.status_code == 200, response.text

    config_url = f"{platform.api}/plugin/demo/1.0.0/config"
    assert platform.http.get(config_url).json() == "greeting: hi\n"
    assert platform.http.put(config_url, json={"config_data": "greeting: hello\n"}).status_code == 200
    assert platform.http.get(config_url).json() == "greeting: hello\n"
    bad = platform.http.put(config_url, json={"config_data": "a: [\n"})
    assert bad.status_code == 400 and "not valid YAML" in bad.json()["error"]

    ran = platform.http.post(f"{platform.api}/plugin/demo/run", params={"times": "2"}, json={"who": "Ada"})
    assert ran.status_code == 200, ran.text
    assert ran.json() == {"greeting": "hello Ada hello Ada "}
    assert platform.http.post(f"{platform.api}/plugin/ghost/run").status_code == 404

    assert platform.http.delete(f"{platform.api}/plugin/all").status_code == 200
    assert httpx.get(f"{platform.api}/plugin").json() == []


def test_unsafe_bundle_is_refused_over_the_api_and_nothing_is_installed(platform: RunningPlatform) -> None:
    escaping = make_zip({**plugin_files(), "../../outside.py": "x"})
    refused = upload(platform, escaping, "evil.zip")
    assert refused.status_code == 400
    assert "escapes the plugin directory" in refused.json()["error"]
    broken = upload(platform, make_zip(plugin_files(source="import missing_dep\n")), "broken.zip")
    assert broken.status_code == 400 and "No module named 'missing_dep'" in broken.json()["error"]
    assert httpx.get(f"{platform.api}/plugin").json() == []


def test_validate_job_manifest_fails_the_deploy_with_the_plugins_message(
    platform: RunningPlatform, tmp_path: Path
) -> None:
    assert upload(platform, make_zip(plugin_files("naming-policy", "1.0.0", POLICY_PLUGIN))).status_code == 200
    job = write_job(tmp_path / "job", "adder", "class Job:\n    def perform(self, a, b):\n        return a + b\n")
    refused = deploy_directory(platform, job)
    assert refused.status_code == 400
    assert refused.json()["error"] == "plugin naming-policy: job name 'adder' must start with 'team-'"
    assert platform.http.get(f"{platform.api}/deploy").json() == []


def test_changing_plugins_is_for_staff_only_while_reading_is_open(platform: RunningPlatform) -> None:
    data = make_zip(plugin_files("demo", "1.0.0", ACTION_PLUGIN))
    anonymous = httpx.post(f"{platform.api}/plugin/upload/demo.zip", content=data, timeout=60)
    assert anonymous.status_code == 401, anonymous.text
    assert httpx.get(f"{platform.api}/plugin").json() == []
    assert upload(platform, data).status_code == 200
    for method, path in (
        ("DELETE", "/plugin/demo/1.0.0"),
        ("DELETE", "/plugin/all"),
        ("POST", "/plugin/demo/run"),
        ("GET", "/plugin/demo/1.0.0/config"),
    ):
        assert httpx.request(method, f"{platform.api}{path}").status_code == 401, (method, path)
    assert httpx.get(f"{platform.api}/plugin/demo/1.0.0/download").status_code == 200
    assert httpx.get(f"{platform.api}/plugin/demo/docs").json() == "# Demo plugin"
