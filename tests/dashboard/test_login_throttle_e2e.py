"""The dashboard passes the browser's address to the lifecycle, so the login throttle keys on it.

In `trackside up` the dashboard calls the lifecycle over loopback like any client. If the lifecycle
saw only that loopback peer, twenty failed logins from anyone would lock every dashboard user out
(docs/auth.md: after 20 failed logins from one client address, the next attempt is refused). Clients
here connect from different loopback addresses (127.0.0.2, 127.0.0.3), which the gateway records.
"""

from __future__ import annotations

import httpx
import pytest
from tests.support.platform import RunningPlatform

pytestmark = pytest.mark.slow

ADDRESS_FREE_FAILURES = 20  # docs/auth.md
CSRF_COOKIE = "trackside_csrf"


def dashboard_login(platform: RunningPlatform, source_address: str, username: str) -> int:
    """One wrong-password login through the dashboard's form, from `source_address`; the status shown."""
    transport = httpx.HTTPTransport(local_address=source_address)
    with httpx.Client(transport=transport, timeout=30, follow_redirects=False) as client:
        client.get(f"{platform.url}/dashboard/login").raise_for_status()
        csrf = client.cookies[CSRF_COOKIE]
        response = client.post(
            f"{platform.url}/dashboard/login",
            data={"username": username, "password": "wrong password", "csrf_token": csrf},
        )
    return 429 if "too many" in response.text.lower() else response.status_code


def test_failed_dashboard_logins_from_one_browser_do_not_lock_out_another(platform: RunningPlatform) -> None:
    for i in range(ADDRESS_FREE_FAILURES + 1):
        dashboard_login(platform, "127.0.0.2", f"attacker-{i}@example.com")
    assert dashboard_login(platform, "127.0.0.2", "attacker-last@example.com") == 429
    assert dashboard_login(platform, "127.0.0.3", "someone-else@example.com") != 429
