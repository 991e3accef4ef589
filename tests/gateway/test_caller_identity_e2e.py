"""The manifest opt-in `forward_caller_token`, through `trackside up`: lifecycle, gateway and a real job."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.platform import RunningPlatform, deploy_and_wait, write_job

pytestmark = pytest.mark.slow

# A job whose webview echoes the request headers it was given (WSGI environ HTTP_* keys).
ECHO = """
import json

class Job:
    def perform(self):
        return 1

    def webview_app(self, base_url):
        def app(environ, start_response):
            seen = {k[5:].lower().replace("_", "-"): v for k, v in environ.items() if k.startswith("HTTP_")}
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(seen).encode()]
        return app
"""


def test_only_a_job_that_opted_in_receives_the_callers_token(platform: RunningPlatform, tmp_path: Path) -> None:
    opted = write_job(tmp_path / "opted", "token-echo-opted", ECHO, extra="forward_caller_token: true\n")
    plain = write_job(tmp_path / "plain", "token-echo-plain", ECHO)
    for directory in (opted, plain):
        assert deploy_and_wait(platform, directory)["status"] == "done"
    token = platform.admin_token
    headers = {"X-Racetrack-Auth": token, "X-Caller-Name": "User someone-else", "Cookie": "theme=dark"}
    seen = {
        name: platform.http.get(
            f"{platform.url}/pub/job/{name}/latest/api/v1/webview/", headers=headers, timeout=30
        ).json()
        for name in ("token-echo-opted", "token-echo-plain")
    }
    assert seen["token-echo-opted"]["x-racetrack-auth"] == token
    assert "x-racetrack-auth" not in seen["token-echo-plain"]
    assert token not in str(seen["token-echo-plain"])
    for echoed in seen.values():
        assert echoed["x-caller-name"] == "User admin"
        assert echoed["cookie"] == "theme=dark"
