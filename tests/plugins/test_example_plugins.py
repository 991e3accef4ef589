"""The example plugins in `plugins/`, bundled and installed with our CLI on a real `trackside up`.

`static-job-type` adds `jobtype: static:1.0.0`: a deployed site is fetched through the gateway.
`webhook-notifier` POSTs job events to a loopback HTTP server the test runs.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.plugins.support import EXAMPLE_PLUGINS, WebhookSink
from tests.support.cli import Cli, trackside_cli
from tests.support.platform import RunningPlatform, deploy_and_wait, deploy_directory

pytestmark = pytest.mark.slow


@pytest.fixture
def cli(platform: RunningPlatform, tmp_path: Path) -> Cli:
    """`python -m trackside.cli.main ...` with its own client config, logged in to the platform as admin."""
    return trackside_cli(platform, tmp_path / "client")


def install_example(cli: Cli, name: str, out: Path) -> None:
    cli("plugin", "bundle", str(EXAMPLE_PLUGINS / name), "--out", str(out))
    (bundle,) = out.glob(f"{name}-*.zip")
    assert "installed" in cli("plugin", "install", str(bundle)).stdout


def write_site(directory: Path, name: str = "site", extra: str = "jobtype_extra:\n  root: public\n") -> Path:
    (directory / "public" / "css").mkdir(parents=True, exist_ok=True)
    (directory / "public" / "index.html").write_text("<h1>Hello from a static job</h1>\n")
    (directory / "public" / "css" / "site.css").write_text("h1 { color: teal }\n")
    (directory / "notes.txt").write_text("not served: outside public/\n")
    (directory / "job.yaml").write_text(
        f"name: {name}\nowner_email: sample@example.com\nversion: 0.0.1\njobtype: static:1.0.0\n{extra}"
    )
    return directory


def test_static_site_job_type_deploys_and_serves_pages_through_the_gateway(
    platform: RunningPlatform, cli: Cli, tmp_path: Path
) -> None:
    install_example(cli, "static-job-type", tmp_path / "dist")
    assert "static:1.0.0" in cli("plugin", "list", "--job-types").stdout.split()
    listed = cli("plugin", "list").stdout.splitlines()
    assert listed[1].split("\t")[:2] == ["static-job-type", "1.0.0"]

    result = deploy_and_wait(platform, write_site(tmp_path / "site"))
    assert result["status"] == "done", result
    base = f"{platform.url}/pub/job/site"
    page = platform.http.get(f"{base}/0.0.1/")
    assert page.status_code == 200, page.text
    assert page.text == "<h1>Hello from a static job</h1>\n"
    assert page.headers["content-type"].startswith("text/html")
    css = platform.http.get(f"{base}/latest/css/site.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert platform.http.get(f"{base}/latest/notes.txt").status_code == 404
    assert platform.http.get(f"{base}/latest/../../etc/passwd").status_code in (400, 404)
    job = platform.http.get(f"{platform.api}/job/site/0.0.1").json()
    assert job["status"] == "running" and job["job_type_version"] == "1.0.0", job

    # The plugin's validate_job_manifest refuses fields the job type does not know.
    refused = deploy_directory(platform, write_site(tmp_path / "typo", "typo", "jobtype_extra:\n  rooot: public\n"))
    assert refused.status_code == 400
    assert "plugin static-job-type: job type static:1.0.0: unknown jobtype_extra field(s) rooot" in refused.text

    downloaded = cli("plugin", "download", "static-job-type", "1.0.0", "--out-dir", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "static-job-type-1.0.0.zip").stat().st_size > 0, downloaded.stdout
    cli("plugin", "uninstall", "static-job-type", "--version", "1.0.0")
    assert "static:1.0.0" not in cli("plugin", "list", "--job-types").stdout.split()
    # A deployed job keeps serving after its job type is uninstalled (the build holds its own server copy).
    assert platform.http.get(f"{base}/0.0.1/").status_code == 200


def test_webhook_notifier_posts_deploy_delete_and_test_events(
    platform: RunningPlatform, cli: Cli, tmp_path: Path, webhook_sink: WebhookSink
) -> None:
    install_example(cli, "static-job-type", tmp_path / "dist")
    install_example(cli, "webhook-notifier", tmp_path / "dist")
    config_url = f"{platform.api}/plugin/webhook-notifier/1.0.0/config"
    assert "webhook_url" in platform.http.get(config_url).json()  # the bundle's default config
    saved = platform.http.put(config_url, json={"config_data": f"webhook_url: {webhook_sink.url}\ntimeout: 5\n"})
    assert saved.status_code == 200, saved.text

    assert deploy_and_wait(platform, write_site(tmp_path / "site"))["status"] == "done"
    deployed = webhook_sink.wait_for("job_deployed")
    assert deployed["job_name"] == "site" and deployed["job_version"] == "0.0.1"
    assert deployed["pub_url"].endswith("/pub/job/site/0.0.1")
    assert deployed["deployed_by"] == platform.http.get(f"{platform.api}/users/validate_user_auth").json()["username"]

    ping = platform.http.post(f"{platform.api}/plugin/webhook-notifier/run", json={"note": "hi"})
    assert ping.json() == {"sent": True, "status": 204}
    assert webhook_sink.wait_for("ping")["params"] == {"note": "hi"}

    assert platform.http.delete(f"{platform.api}/job/site/0.0.1").status_code == 200
    assert webhook_sink.wait_for("job_deleted")["job_name"] == "site"


def test_a_failing_webhook_does_not_break_a_deploy(platform: RunningPlatform, cli: Cli, tmp_path: Path) -> None:
    install_example(cli, "static-job-type", tmp_path / "dist")
    install_example(cli, "webhook-notifier", tmp_path / "dist")
    dead = "http://127.0.0.1:9/nothing-listens-here"
    config_url = f"{platform.api}/plugin/webhook-notifier/1.0.0/config"
    platform.http.put(config_url, json={"config_data": f"webhook_url: {dead}\ntimeout: 1\n"})
    result = deploy_and_wait(platform, write_site(tmp_path / "site"))
    assert result["status"] == "done", result
    assert httpx.get(f"{platform.url}/pub/job/site/latest/", headers=platform.auth).status_code == 200
    assert "plugin webhook-notifier: hook post_job_deploy failed" in platform.logs()
