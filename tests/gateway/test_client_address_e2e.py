"""The login throttle keys on an address the client cannot choose, through `trackside up` and split.

docs/auth.md: after 20 failed logins from one client address, the next attempt is refused (429).
A client that writes a new `X-Forwarded-For` on every attempt must still be one address, unless
the operator listed the peer it comes from in `trusted_proxies`.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from tests.support.platform import RunningPlatform, start_platform, start_trackside

pytestmark = pytest.mark.slow

ADDRESS_FREE_FAILURES = 20  # docs/auth.md


def failed_logins_from_spoofed_addresses(api: str, attempts: int) -> list[int]:
    """One failed login per made-up user, each claiming another client address."""
    statuses = []
    with httpx.Client(timeout=30) as client:
        for i in range(attempts):
            response = client.post(
                f"{api}/users/login",
                json={"username": f"nobody-{i}@example.com", "password": "wrong password"},
                headers={"X-Forwarded-For": f"198.51.100.{i + 1}", "X-Real-IP": f"198.51.100.{i + 1}"},
            )
            statuses.append(response.status_code)
    return statuses


def test_through_the_gateway_a_spoofed_forwarded_for_does_not_dodge_the_throttle(
    platform: RunningPlatform,
) -> None:
    statuses = failed_logins_from_spoofed_addresses(platform.api, ADDRESS_FREE_FAILURES + 1)
    assert statuses == [401] * ADDRESS_FREE_FAILURES + [429]


def test_a_lifecycle_served_alone_does_not_believe_a_loopback_peers_forwarded_for(
    tmp_path: Path, database_url: str
) -> None:
    lifecycle = start_trackside(["serve", "lifecycle"], tmp_path / "data", database_url)
    try:
        statuses = failed_logins_from_spoofed_addresses(lifecycle.api, ADDRESS_FREE_FAILURES + 1)
    finally:
        lifecycle.stop()
    assert statuses == [401] * ADDRESS_FREE_FAILURES + [429]


def test_an_operator_trusted_proxy_is_believed(tmp_path: Path, database_url: str) -> None:
    running = start_platform(
        tmp_path / "data", database_url, extra_env={"TRACKSIDE_TRUSTED_PROXIES": json.dumps(["127.0.0.1"])}
    )
    try:
        statuses = failed_logins_from_spoofed_addresses(running.api, ADDRESS_FREE_FAILURES + 1)
    finally:
        running.stop()
    assert statuses == [401] * (ADDRESS_FREE_FAILURES + 1)
