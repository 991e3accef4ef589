"""`/escs` on a real platform: numbers a client sends are checked at the API boundary (issue 9, item 8).

A token expiry far beyond any date Python can hold used to reach `datetime.fromtimestamp` and
answer 500 (`OSError`, `OverflowError`); it is a 400 naming the field, and nothing is issued.
"""

from __future__ import annotations

import time

import pytest
from tests.support.platform import RunningPlatform

pytestmark = [pytest.mark.slow, pytest.mark.store]  # its platform uses fresh_database()


@pytest.fixture(scope="module")
def platform(module_platform: RunningPlatform) -> RunningPlatform:
    return module_platform


@pytest.mark.parametrize("expiry_time", [10**17, 1e17, 2**70, -(2**70), -1])
def test_an_expiry_time_out_of_range_is_a_400_naming_the_field_and_issues_nothing(
    platform: RunningPlatform, expiry_time: float
) -> None:
    esc = platform.http.post(f"{platform.api}/escs", json={"name": "edge-esc"})
    assert esc.status_code == 201, esc.text
    platform.secrets.add(esc.json()["token"])
    esc_id = esc.json()["id"]

    response = platform.http.post(f"{platform.api}/escs/{esc_id}/auth_token", json={"expiry_time": expiry_time})

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "InvalidInput"
    assert "expiry_time" in body["error"]
    tokens = platform.http.get(f"{platform.api}/escs/{esc_id}/auth_data").json()["tokens"]
    assert len(tokens) == 1  # only the token the ESC was created with
    platform.secrets.update(t["token"] for t in tokens)


def test_an_expiry_time_within_range_still_issues_a_token(platform: RunningPlatform) -> None:
    esc = platform.http.post(f"{platform.api}/escs", json={"name": "edge-esc"})
    assert esc.status_code == 201, esc.text
    platform.secrets.add(esc.json()["token"])
    expiry = int(time.time()) + 3600

    response = platform.http.post(f"{platform.api}/escs/{esc.json()['id']}/auth_token", json={"expiry_time": expiry})

    assert response.status_code == 201, response.text
    platform.secrets.add(response.json()["token"])
    assert response.json()["expiry_time"] == expiry
