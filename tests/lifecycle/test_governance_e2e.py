"""Governance on a real platform: users, tokens, permissions, ESCs, job-to-job calls, the audit log,
maintenance mode and secrets at rest, plus every attack of issue 3 as its own test.

One platform serves the whole module (starting one and deploying three jobs takes most of the
time); each test makes its own users and ESCs, so tests don't depend on each other's state.
The gateway's decision cache is set to 1 s, so revocations must bite within about a second.
"""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from tests.conftest import EXAMPLES, fresh_database
from tests.support.platform import RunningPlatform, deploy_and_wait, deploy_directory, start_platform, write_job

pytestmark = [pytest.mark.slow, pytest.mark.store]  # its platform uses fresh_database()

GATEWAY_TTL = 1.0
PASSWORD = "Tangerine-Orbit-88"
SECRET_VALUE = "plain-secret-value-7f3a9c"
GIT_PASSWORD = "git-password-4b1e2d"
# Every token, password and secret value a test sees on this worker; the `gov` fixture's teardown
# fails if any of them shows up in its platform's log or a job's log (each xdist worker has its own).
SEEN_SECRETS: set[str] = {PASSWORD, SECRET_VALUE, GIT_PASSWORD}

SECRET_JOB = "class Job:\n    def perform(self):\n        return 'SECRET'\n"
CALLER_JOB = '''
import json, os, urllib.error, urllib.request

class Job:
    def perform(self, path, method="POST", body=None):
        """Call the platform at `path` with this job's family token (AUTH_TOKEN)."""
        base = os.environ["PUB_URL"].rsplit("/pub", 1)[0]
        data = json.dumps({} if body is None else body).encode() if method in ("POST", "PUT") else None
        headers = {"X-Racetrack-Auth": os.environ.get("AUTH_TOKEN", ""), "Content-Type": "application/json"}
        request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return {"status": response.status, "body": response.read().decode()}
        except urllib.error.HTTPError as error:
            return {"status": error.code, "body": error.read().decode()}
'''
# The job proves it got the plain value by its digest, so the value is nowhere in its source.
ENV_JOB = (
    f"import hashlib, os\nclass Job:\n    def perform(self):\n"
    f"        return hashlib.sha256(os.environ['MY_SECRET'].encode()).hexdigest() == "
    f"{hashlib.sha256(SECRET_VALUE.encode()).hexdigest()!r}\n"
)


@pytest.fixture(scope="module")
def gov(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    root = tmp_path_factory.mktemp("governance")
    with fresh_database(root) as database_url:
        yield from _governed_platform(root, database_url)


def _governed_platform(root: Path, database_url: str) -> Iterator[RunningPlatform]:
    platform = start_platform(root / "data", database_url, extra_env={"TRACKSIDE_GATEWAY_CACHE_TTL": str(GATEWAY_TTL)})
    try:
        SEEN_SECRETS.add(platform.admin_password)
        SEEN_SECRETS.add(platform.admin_token)
        for directory in (
            EXAMPLES / "adder",
            write_job(root / "secret", "secret", SECRET_JOB),
            write_job(root / "caller", "caller", CALLER_JOB),
        ):
            result = deploy_and_wait(platform, directory)
            assert result["status"] == "done", result
        yield platform
    finally:
        platform.secrets.update(SEEN_SECRETS)
        platform.stop()


# -- helpers ---------------------------------------------------------------------------------------


def auth(token: str) -> dict[str, str]:
    return {"X-Racetrack-Auth": token}


def new_user(gov: RunningPlatform, *, staff: bool = False) -> tuple[str, str]:
    """An active user made by the admin; returns (username, token)."""
    username = f"u{uuid.uuid4().hex[:8]}@example.com"
    created = gov.http.post(f"{gov.api}/users", json={"username": username, "password": PASSWORD, "is_staff": staff})
    assert created.status_code == 201, created.text
    login = httpx.post(f"{gov.api}/users/login", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    SEEN_SECRETS.add(token)
    return username, token


def new_esc(gov: RunningPlatform) -> tuple[str, str]:
    """An ESC made by the admin; returns (esc id, its first token)."""
    created = gov.http.post(f"{gov.api}/escs", json={"name": f"esc-{uuid.uuid4().hex[:6]}"})
    assert created.status_code == 201, created.text
    SEEN_SECRETS.add(created.json()["token"])
    return created.json()["id"], created.json()["token"]


def grant_esc(gov: RunningPlatform, esc_id: str, family: str, scope: str = "call_job", **narrow: str) -> None:
    response = gov.http.post(f"{gov.api}/auth/allow/esc/{esc_id}/job/{family}/scope/{scope}", params=narrow)
    assert response.status_code == 201, response.text


def call(
    gov: RunningPlatform, job: str, token: str | None, path: str = "/api/v1/perform", payload: dict | None = None
) -> httpx.Response:
    headers = auth(token) if token is not None else {}
    return httpx.post(
        f"{gov.url}/pub/job/{job}/latest{path}",
        json=payload if payload is not None else {},
        headers=headers,
        timeout=10,
    )


def add(gov: RunningPlatform, token: str | None) -> httpx.Response:
    return call(gov, "adder", token, payload={"a": 40, "b": 2})


def job_names(gov: RunningPlatform) -> list[str]:
    return sorted(j["name"] for j in gov.http.get(f"{gov.api}/job").json())


def raw_request(gov: RunningPlatform, target: str, token: str) -> tuple[int, str]:
    """Send a request line exactly as written (HTTP clients normalise `..` and `//` away)."""
    host, port = gov.url.removeprefix("http://").split(":")
    request = (
        f"POST {target} HTTP/1.1\r\nHost: {host}\r\nX-Racetrack-Auth: {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request.encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    text = b"".join(chunks).decode(errors="replace")
    return int(text.split(" ", 2)[1]), text


def wait_for_status(fn: object, expected: int, within: float) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        response = fn()  # type: ignore[operator]
        if response.status_code == expected or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


# -- users -----------------------------------------------------------------------------------------


def test_register_starts_inactive_admin_activates_then_login_change_password_logout(gov: RunningPlatform) -> None:
    username = f"r{uuid.uuid4().hex[:8]}@example.com"
    weak = httpx.post(f"{gov.api}/users/register", json={"username": username, "password": "12345678"})
    assert weak.status_code == 400 and "numeric" in weak.json()["error"]
    no_email = httpx.post(f"{gov.api}/users/register", json={"username": "plainname", "password": PASSWORD})
    assert no_email.status_code == 400 and "email" in no_email.json()["error"]
    registered = httpx.post(f"{gov.api}/users/register", json={"username": username, "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    assert registered.json()["is_active"] is False

    inactive = httpx.post(f"{gov.api}/users/login", json={"username": username, "password": PASSWORD})
    assert inactive.status_code == 401 and "not active" in inactive.json()["error"]
    activated = gov.http.post(f"{gov.api}/users/{username}/activate")
    assert activated.status_code == 200 and activated.json()["is_active"] is True

    login = httpx.post(f"{gov.api}/users/login", json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    SEEN_SECRETS.add(token)
    assert login.json()["username"] == username and login.json()["is_staff"] is False
    assert "X-Racetrack-Auth=" in login.headers["set-cookie"]
    by_cookie = httpx.get(f"{gov.api}/users/validate_user_auth", cookies={"X-Racetrack-Auth": token})
    assert by_cookie.status_code == 200 and by_cookie.json()["username"] == username
    by_bearer = httpx.get(f"{gov.api}/job", headers={"Authorization": f"Bearer {token}"})
    assert by_bearer.status_code == 200

    new_password = "Another-Fine-Phrase-42"
    SEEN_SECRETS.add(new_password)
    wrong_old = httpx.put(
        f"{gov.api}/users/change_password",
        headers=auth(token),
        json={"old_password": "nope-nope-nope", "new_password": new_password},
    )
    assert wrong_old.status_code == 400
    changed = httpx.put(
        f"{gov.api}/users/change_password",
        headers=auth(token),
        json={"old_password": PASSWORD, "new_password": new_password},
    )
    assert changed.status_code == 200, changed.text
    assert httpx.post(f"{gov.api}/users/login", json={"username": username, "password": PASSWORD}).status_code == 401
    assert (
        httpx.post(f"{gov.api}/users/login", json={"username": username, "password": new_password}).status_code == 200
    )
    logout = httpx.get(f"{gov.api}/users/logout")
    assert logout.status_code == 200 and 'X-Racetrack-Auth=""' in logout.headers["set-cookie"]

    events = gov.http.get(f"{gov.api}/audit/activity").json()["events"]
    assert any(
        e["event_type"] == "user_activated" and e["username_subject"] == username and e["username_executor"] == "admin"
        for e in events
    )


def test_repeated_failed_logins_are_slowed_down_and_the_refusal_says_so(gov: RunningPlatform) -> None:
    username, _token = new_user(gov)
    answers = [
        httpx.post(f"{gov.api}/users/login", json={"username": username, "password": f"wrong-{i}-xyz"})
        for i in range(7)
    ]
    assert answers[0].status_code == 401
    assert answers[-1].status_code == 429
    assert "slowed down" in answers[-1].json()["error"] and username in answers[-1].json()["error"]
    # Even the right password waits its turn.
    assert httpx.post(f"{gov.api}/users/login", json={"username": username, "password": PASSWORD}).status_code == 429


def test_a_user_deploys_sees_jobs_and_only_the_deployer_may_delete(gov: RunningPlatform, tmp_path: Path) -> None:
    alice, alice_token = new_user(gov)
    _bob, bob_token = new_user(gov)
    name = f"a{uuid.uuid4().hex[:6]}"
    job_dir = write_job(tmp_path / name, name, "class Job:\n    def perform(self):\n        return 'alice'\n")
    result = deploy_and_wait(gov, job_dir, token=alice_token)
    assert result["status"] == "done", result
    assert result["deployed_by"] == alice
    assert call(gov, name, alice_token).json() == "alice"
    assert name in [j["name"] for j in httpx.get(f"{gov.api}/job", headers=auth(bob_token)).json()]

    refused = httpx.delete(f"{gov.api}/job/{name}/0.0.1", headers=auth(bob_token))
    assert refused.status_code == 403 and "delete_job" in refused.json()["error"]
    assert name in job_names(gov)
    assert httpx.delete(f"{gov.api}/job/{name}/0.0.1", headers=auth(alice_token)).status_code == 200
    assert name not in job_names(gov)

    mine = httpx.get(
        f"{gov.api}/audit/activity", params={"related_to_me": "true", "job_name": name}, headers=auth(alice_token)
    ).json()["events"]
    assert [e["event_type"] for e in mine] == ["job_deleted", "job_deployed"]
    assert "has been deleted by" in mine[0]["explanation"]


def test_job_list_is_filtered_to_what_the_caller_may_read(gov: RunningPlatform) -> None:
    esc_id, esc_token = new_esc(gov)
    assert httpx.get(f"{gov.api}/job", headers=auth(esc_token)).json() == []
    grant_esc(gov, esc_id, "adder", "read_job")
    listed = httpx.get(f"{gov.api}/job", headers=auth(esc_token)).json()
    assert [j["name"] for j in listed] == ["adder"]
    assert httpx.get(f"{gov.api}/job/secret/latest", headers=auth(esc_token)).status_code == 403


# -- ESCs and the gateway ----------------------------------------------------------------------------


def test_an_esc_calls_a_job_only_with_a_grant_and_a_revoked_token_stops_within_the_ttl(gov: RunningPlatform) -> None:
    esc_id, esc_token = new_esc(gov)
    refused = add(gov, esc_token)
    assert refused.status_code == 403, refused.text
    grant_esc(gov, esc_id, "adder")
    allowed = wait_for_status(lambda: add(gov, esc_token), 200, GATEWAY_TTL + 2)
    assert allowed.status_code == 200 and allowed.json() == 42
    assert call(gov, "secret", esc_token).status_code == 403  # a grant on one family only

    extra = gov.http.post(f"{gov.api}/escs/{esc_id}/auth_token", json={"expiry_time": None}).json()
    SEEN_SECRETS.add(extra["token"])
    assert add(gov, extra["token"]).status_code == 200
    revoked = gov.http.delete(f"{gov.api}/escs/{esc_id}/auth_token/{extra['id']}")
    assert revoked.status_code == 200
    started = time.monotonic()
    stopped = wait_for_status(lambda: add(gov, extra["token"]), 401, GATEWAY_TTL + 2)
    assert stopped.status_code == 401 and time.monotonic() - started <= GATEWAY_TTL + 1.5
    assert add(gov, esc_token).status_code == 200  # the other token is untouched
    data = gov.http.get(f"{gov.api}/escs/{esc_id}/auth_data").json()
    assert {t["id"]: t["active"] for t in data["tokens"]}[extra["id"]] is False


def test_open_paths_need_no_token(gov: RunningPlatform) -> None:
    for path in ("/health", "/live", "/ready"):
        response = httpx.get(f"{gov.url}/pub/job/adder/latest{path}")
        assert response.status_code == 200, (path, response.text)


def test_public_endpoints_are_open_only_after_staff_approve(gov: RunningPlatform, tmp_path: Path) -> None:
    name = f"p{uuid.uuid4().hex[:6]}"
    job_dir = write_job(
        tmp_path / name,
        name,
        "class Job:\n    def perform(self):\n        return 'public'\n",
        extra="public_endpoints:\n  - /api/v1/perform\n",
    )
    assert deploy_and_wait(gov, job_dir)["status"] == "done"
    assert call(gov, name, None).status_code == 401
    requests = [r for r in gov.http.get(f"{gov.api}/public-endpoints").json() if r["job_name"] == name]
    assert [(r["endpoint"], r["active"]) for r in requests] == [("/api/v1/perform", False)]
    _user, user_token = new_user(gov)
    assert (
        httpx.post(f"{gov.api}/public-endpoints/{requests[0]['id']}/approve", headers=auth(user_token)).status_code
        == 403
    )
    assert gov.http.post(f"{gov.api}/public-endpoints/{requests[0]['id']}/approve").status_code == 200
    opened = wait_for_status(lambda: call(gov, name, None), 200, GATEWAY_TTL + 2)
    assert opened.status_code == 200 and opened.json() == "public"
    assert httpx.get(f"{gov.url}/pub/job/{name}/latest/metrics").status_code == 401


# -- job to job --------------------------------------------------------------------------------------


def test_jobs_get_their_family_token_and_call_only_granted_families_one_way(gov: RunningPlatform) -> None:
    admin = gov.auth["X-Racetrack-Auth"]
    perform = {"path": "/pub/job/adder/latest/api/v1/perform", "body": {"a": 40, "b": 2}}
    before = call(gov, "caller", admin, payload=perform).json()
    assert before["status"] == 403, before
    granted = gov.http.post(f"{gov.api}/auth/allow/job_family/caller/job/adder/scope/call_job")
    assert granted.status_code == 201, granted.text
    deadline = time.monotonic() + GATEWAY_TTL + 2
    after = call(gov, "caller", admin, payload=perform).json()
    while after["status"] != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        after = call(gov, "caller", admin, payload=perform).json()
    assert after == {"status": 200, "body": "42"}
    # The grant is one way, and covers one family.
    other = call(gov, "caller", admin, payload={"path": "/pub/job/secret/latest/api/v1/perform"}).json()
    assert other["status"] == 403 and "Job family caller" in other["body"]


def test_a_family_token_cannot_be_used_beyond_its_grants(gov: RunningPlatform) -> None:
    admin = gov.auth["X-Racetrack-Auth"]
    attempts = [
        {"path": "/lifecycle/api/v1/job/secret/0.0.1", "method": "DELETE"},
        {"path": "/lifecycle/api/v1/escs", "method": "GET"},
        {"path": "/lifecycle/api/v1/auth/allow/job_family/caller/job/secret/scope/call_job", "method": "POST"},
        {"path": "/lifecycle/api/v1/settings/maintenance", "method": "PUT", "body": {"enabled": True}},
    ]
    for attempt in attempts:
        answer = call(gov, "caller", admin, payload=attempt).json()
        assert answer["status"] == 403, (attempt, answer)
    assert "secret" in job_names(gov)
    assert gov.http.get(f"{gov.api}/settings/maintenance").json() == {"maintenance_mode": False}
    assert call(gov, "caller", admin, payload={"path": "/pub/job/secret/latest/api/v1/perform"}).json()["status"] == 403


# -- attacks ---------------------------------------------------------------------------------------


def assert_nothing_changed(gov: RunningPlatform) -> None:
    assert job_names(gov)[:3] == ["adder", "caller", "secret"] or {"adder", "caller", "secret"} <= set(job_names(gov))
    assert gov.http.get(f"{gov.api}/settings/maintenance").json() == {"maintenance_mode": False}


def attack_with(gov: RunningPlatform, headers: dict[str, str], expected: int) -> None:
    """Every door with these headers: list, delete, deploy, staff, grants, the gateway; all refused."""
    assert httpx.get(f"{gov.api}/job", headers=headers).status_code == expected
    assert httpx.delete(f"{gov.api}/job/secret/0.0.1", headers=headers).status_code == expected
    assert (
        httpx.post(
            f"{gov.api}/deploy", headers=headers, json={"manifest": {"name": "evil", "version": "0.0.1"}}
        ).status_code
        == expected
    )
    assert httpx.put(f"{gov.api}/settings/maintenance", headers=headers, json={"enabled": True}).status_code == expected
    assert httpx.post(f"{gov.api}/escs", headers=headers, json={"name": "evil"}).status_code == expected
    assert (
        httpx.post(f"{gov.api}/auth/allow/job_family/caller/job/secret/scope/call_job", headers=headers).status_code
        == expected
    )
    gateway = httpx.post(f"{gov.url}/pub/job/secret/latest/api/v1/perform", headers=headers, json={})
    assert gateway.status_code == expected and "SECRET" not in gateway.text
    assert_nothing_changed(gov)


def test_attack_no_token_is_401_everywhere(gov: RunningPlatform) -> None:
    attack_with(gov, {}, 401)


def test_attack_malformed_token_is_401(gov: RunningPlatform) -> None:
    attack_with(gov, auth("not.a.token"), 401)
    attack_with(gov, auth("garbage"), 401)


def test_attack_token_signed_with_another_key_is_401(gov: RunningPlatform) -> None:
    forged = jwt.encode(
        {"seed": "x", "subject": "admin", "subject_type": "internal", "scopes": ["full_access"]},
        "a-different-auth-key-of-some-length",
        algorithm="HS256",
    )
    attack_with(gov, auth(forged), 401)
    forged_user = jwt.encode(
        {"seed": "x", "subject": "admin", "subject_type": "user"},
        "a-different-auth-key-of-some-length",
        algorithm="HS256",
    )
    attack_with(gov, auth(forged_user), 401)


def test_attack_expired_token_is_401(gov: RunningPlatform) -> None:
    esc_id, _token = new_esc(gov)
    grant_esc(gov, esc_id, "secret")
    short = gov.http.post(f"{gov.api}/escs/{esc_id}/auth_token", json={"expiry_time": int(time.time()) + 2}).json()
    SEEN_SECRETS.add(short["token"])
    time.sleep(max(0.0, short["expiry_time"] - time.time()) + 0.5)
    attack_with(gov, auth(short["token"]), 401)


def test_attack_revoked_token_is_401(gov: RunningPlatform) -> None:
    esc_id, token = new_esc(gov)
    grant_esc(gov, esc_id, "secret", "full_access")
    token_id = gov.http.get(f"{gov.api}/escs/{esc_id}/auth_data").json()["tokens"][0]["id"]
    assert gov.http.delete(f"{gov.api}/escs/{esc_id}/auth_token/{token_id}").status_code == 200
    time.sleep(GATEWAY_TTL + 0.2)
    attack_with(gov, auth(token), 401)


def test_attack_token_of_a_deleted_user_is_401(gov: RunningPlatform) -> None:
    username, token = new_user(gov, staff=True)
    assert httpx.get(f"{gov.api}/users", headers=auth(token)).status_code == 200
    assert gov.http.delete(f"{gov.api}/users/{username}").status_code == 200
    time.sleep(GATEWAY_TTL + 0.2)
    attack_with(gov, auth(token), 401)


def test_attack_user_token_on_staff_endpoints_is_403(gov: RunningPlatform) -> None:
    _username, token = new_user(gov)
    headers = auth(token)
    assert httpx.get(f"{gov.api}/users", headers=headers).status_code == 403
    sneaky = {"username": "sneaky@example.com", "password": PASSWORD, "is_staff": True}
    assert httpx.post(f"{gov.api}/users", headers=headers, json=sneaky).status_code == 403
    assert httpx.post(f"{gov.api}/escs", headers=headers, json={"name": "evil"}).status_code == 403
    assert httpx.put(f"{gov.api}/settings/maintenance", headers=headers, json={"enabled": True}).status_code == 403
    assert (
        httpx.post(f"{gov.api}/auth/allow/job_family/caller/job/secret/scope/call_job", headers=headers).status_code
        == 403
    )
    assert httpx.post(f"{gov.api}/auth/token/user/all/regenerate", headers=headers).status_code == 403
    assert httpx.patch(f"{gov.api}/users/admin", headers=headers, json={"is_active": False}).status_code == 403
    assert "sneaky@example.com" not in [u["username"] for u in gov.http.get(f"{gov.api}/users").json()]
    assert_nothing_changed(gov)


def test_attack_an_endpoint_permission_used_on_another_endpoint_is_403(gov: RunningPlatform) -> None:
    esc_id, token = new_esc(gov)
    grant_esc(gov, esc_id, "adder", endpoint="/api/v1/perform")
    assert wait_for_status(lambda: add(gov, token), 200, GATEWAY_TTL + 2).json() == 42
    for path in ("/metrics", "/api/v1/perform/extra", "/api/v1/performx", "/api/v1"):
        response = httpx.get(f"{gov.url}/pub/job/adder/latest{path}", headers=auth(token))
        assert response.status_code == 403, (path, response.text)
    assert call(gov, "secret", token).status_code == 403


@pytest.mark.parametrize(
    "target",
    [
        "/pub/job/adder/latest/../../secret/latest/api/v1/perform",
        "/pub/job/adder/latest/%2e%2e/%2e%2e/secret/latest/api/v1/perform",
        "/pub/job/adder/latest/api/v1/perform/../../../../secret/latest/api/v1/perform",
        "/pub/job/adder%2Flatest%2F..%2F..%2Fsecret/latest/api/v1/perform",
        "/pub/job/adder/latest%2F..%2F..%2Fsecret%2Flatest/api/v1/perform",
        "/pub/job/adder/latest//..//..//secret/latest/api/v1/perform",
        "//pub/job/secret/latest/api/v1/perform",
        "/pub/job//secret/latest/api/v1/perform",
        "/pub/job/adder/latest/%2F%2E%2E%2F%2E%2E%2Fsecret/latest/api/v1/perform",
    ],
)
def test_attack_gateway_path_tricks_never_reach_another_job(gov: RunningPlatform, target: str) -> None:
    esc_id, token = new_esc(gov)
    grant_esc(gov, esc_id, "adder")
    status, text = raw_request(gov, target, token)
    assert status in (400, 401, 403, 404), text
    assert "SECRET" not in text
    assert_nothing_changed(gov)


# -- maintenance mode ---------------------------------------------------------------------------------


def test_maintenance_refuses_deploy_delete_and_redeploy_with_503_while_calls_go_on(gov: RunningPlatform) -> None:
    assert gov.http.put(f"{gov.api}/settings/maintenance", json={"enabled": True}).status_code == 200
    try:
        deploy = deploy_directory(gov, EXAMPLES / "adder", force=True)
        assert deploy.status_code == 503 and "maintenance mode" in deploy.json()["error"]
        delete = gov.http.delete(f"{gov.api}/job/adder/0.0.1")
        assert delete.status_code == 503 and "maintenance mode" in delete.json()["error"]
        redeploy = gov.http.post(f"{gov.api}/job/adder/0.0.1/redeploy")
        assert redeploy.status_code == 503 and "maintenance mode" in redeploy.json()["error"]
        assert add(gov, gov.admin_token).json() == 42
        assert "adder" in job_names(gov)
    finally:
        assert gov.http.put(f"{gov.api}/settings/maintenance", json={"enabled": False}).status_code == 200
    events = gov.http.get(f"{gov.api}/audit/events").json()
    assert any(e["event_type"] == "setting_changed" and e["properties"].get("value") is True for e in events)


# -- secrets and logs ---------------------------------------------------------------------------------


def test_secrets_are_encrypted_at_rest_and_never_returned(gov: RunningPlatform, tmp_path: Path) -> None:
    name = f"s{uuid.uuid4().hex[:6]}"
    job_dir = write_job(tmp_path / name, name, ENV_JOB)
    result = deploy_and_wait(gov, job_dir, secret_vars={"runtime_env": {"MY_SECRET": SECRET_VALUE}, "build_env": {}})
    assert result["status"] == "done", result
    assert call(gov, name, gov.admin_token).json() is True  # the job got the plain value
    for url in (
        f"{gov.api}/deploy/{result['id']}",
        f"{gov.api}/job/{name}/0.0.1",
        f"{gov.api}/deploy",
        f"{gov.api}/job/{name}/0.0.1/build-logs",
        f"{gov.api}/audit/events",
    ):
        assert SECRET_VALUE not in gov.http.get(url).text, url
    needles = [SECRET_VALUE.encode(), gov.admin_token.encode()]
    for path in [*gov.data_dir.rglob("*"), *gov.data_dir.parent.glob("trackside.db*")]:
        if path.is_file() and path.name != "admin-password" and not path.name.endswith(".log"):
            content = path.read_bytes()
            for needle in needles:
                assert needle not in content, f"{needle[:8]!r}... found in {path}"


def test_failed_logins_and_bad_tokens_leave_no_secret_in_the_platform_log(gov: RunningPlatform) -> None:
    """The attempts below are logged; the `gov` fixture's teardown scans every log for what they sent."""
    _username, token = new_user(gov)
    wrong = httpx.post(f"{gov.api}/users/login", json={"username": "admin", "password": "Wrong-Password-99"})
    assert wrong.status_code == 401, wrong.text
    SEEN_SECRETS.add("Wrong-Password-99")
    attack_with(gov, auth(token + "x"), 401)
    SEEN_SECRETS.add(token + "x")
    gov.secrets.update(SEEN_SECRETS)
    gov.assert_no_secret_in_logs()
