"""Text a client sends may not hold a NUL character, on any route (lifecycle/api/bounds.py).

PostgreSQL's text columns cannot store one: a NUL in a path, a query or a JSON body used to reach
the store and answer 500 (with the SQL statement in the body). It is a 400 naming the field; these
tests fail on today's code on PostgreSQL (`scripts/test` reruns them there).
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.support.platform import RunningPlatform

pytestmark = [pytest.mark.slow, pytest.mark.store]  # its platform uses fresh_database()


@pytest.fixture(scope="module")
def platform(module_platform: RunningPlatform) -> RunningPlatform:
    return module_platform


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/job/a%00b/0.0.1", None, "name"),
        ("GET", "/deploy/a%00b", None, "deployment_id"),
        ("PATCH", "/users/a%00b", {}, "username"),
        ("GET", "/auth/can-call-job/a%00b/0.0.1/x", None, "name"),
        ("GET", "/audit/activity?job_name=a%00b", None, "job_name"),
        ("POST", "/escs", {"name": "a\x00b"}, "body"),
        ("POST", "/users/login", {"username": "a\x00b", "password": "x"}, "body"),
        ("POST", "/permissions", {"subject_type": "user", "subject": "a\x00", "scope": "read_job"}, "body"),
    ],
)
def test_a_nul_character_anywhere_in_a_request_is_a_400_naming_where(
    platform: RunningPlatform, method: str, path: str, body: Any, field: str
) -> None:
    response = platform.http.request(method, f"{platform.api}{path}", json=body)

    assert response.status_code == 400, response.text
    assert response.json() == {"error": f"{field}: must not contain a NUL character", "type": "InvalidInput"}


def test_an_escaped_backslash_before_u0000_is_plain_text_not_a_nul(platform: RunningPlatform) -> None:
    response = platform.http.post(
        f"{platform.api}/escs", content=b'{"name": "back\\\\u0000slash"}', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 201, response.text
    platform.secrets.add(response.json()["token"])
    assert response.json()["name"] == "back\\u0000slash"
