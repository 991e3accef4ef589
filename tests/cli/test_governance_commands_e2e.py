"""The governance commands against a real platform: login, ESCs, grants, audit, maintenance, logout."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from tests.conftest import EXAMPLES
from tests.support.platform import RunningPlatform, deploy_and_wait

pytestmark = pytest.mark.slow


def trackside(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trackside.cli.main", *args], input=stdin, capture_output=True, text=True, timeout=120
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_login_esc_grant_token_revoke_audit_maintenance_logout(platform: RunningPlatform) -> None:
    remote = ["--remote", platform.url]
    refused = trackside("list", *remote)
    assert refused.returncode == 1 and "no auth token" in refused.stderr
    wrong = trackside("login", "--username", "admin", "--password-stdin", *remote, stdin="wrong-password-1\n")
    assert wrong.returncode == 1 and "invalid username or password" in wrong.stderr
    ok(trackside("login", "--username", "admin", "--password-stdin", *remote, stdin=platform.admin_password + "\n"))
    token = ok(trackside("get", "auth-token", *remote)).strip()
    assert (
        httpx.get(f"{platform.api}/users/validate_user_auth", headers={"X-Racetrack-Auth": token}).json()["username"]
        == "admin"
    )
    assert deploy_and_wait(platform, EXAMPLES / "adder")["status"] == "done"

    created = trackside("esc", "create", "billing", *remote)
    esc_token = ok(created).strip()
    esc_id = created.stderr.split("with id ")[1].split()[0]
    assert esc_id in ok(trackside("esc", "list", *remote))
    perform = f"{platform.url}/pub/job/adder/latest/api/v1/perform"
    assert httpx.post(perform, json={"a": 1, "b": 2}, headers={"X-Racetrack-Auth": esc_token}).status_code == 403
    ok(trackside("grant", "esc", esc_id, "adder", *remote))
    extra = trackside("esc", "token", esc_id, "--expires-in", "3600", *remote)
    extra_token = ok(extra).strip()
    token_id = extra.stderr.split("token ")[1].split()[0]
    answer = httpx.post(perform, json={"a": 1, "b": 2}, headers={"X-Racetrack-Auth": extra_token})
    assert answer.status_code == 200 and answer.json() == 3
    assert token_id in ok(trackside("esc", "tokens", esc_id, *remote))
    ok(trackside("esc", "revoke", esc_id, token_id, *remote))
    revoked = httpx.get(f"{platform.api}/job", headers={"X-Racetrack-Auth": extra_token})
    assert revoked.status_code == 401

    assert ok(trackside("maintenance", "on", *remote)).strip() == "maintenance mode is on"
    blocked = trackside("delete", "adder", "--version", "0.0.1", *remote)
    assert blocked.returncode == 1 and "maintenance mode" in blocked.stderr
    assert ok(trackside("maintenance", "off", *remote)).strip() == "maintenance mode is off"

    audit = ok(trackside("audit", "--job", "adder", *remote))
    assert "job_deployed" in audit and "permission_granted" in audit
    assert "setting_changed" in ok(trackside("audit", *remote))

    ok(trackside("logout", *remote))
    assert trackside("list", *remote).returncode == 1
