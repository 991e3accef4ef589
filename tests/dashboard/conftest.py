"""One `trackside up` and one headless Chromium (Debian's, driven by Playwright) per test module."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import fresh_database
from tests.support.platform import RunningPlatform, start_platform
from tests.support.services import CHROMIUM_ARGS, require_chromium

REPO_ROOT = Path(__file__).resolve().parents[2]
# The README's screenshots: rewritten only when asked (TRACKSIDE_UPDATE_SCREENSHOTS=1), so a test run
# leaves the tree clean; otherwise they go to a scratch directory and are still taken (and can fail).
SCREENSHOTS = (
    REPO_ROOT / "docs" / "img"
    if os.environ.get("TRACKSIDE_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="trackside-screenshots-"))
)
PASSWORD = "Heliotrope-Lantern-42"


@pytest.fixture(scope="module")
def chromium_path() -> str:
    return require_chromium()


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[RunningPlatform]:
    """The platform: only the local target (so a move has nowhere to go), fast call reports."""
    root = tmp_path_factory.mktemp("dashboard")
    env = {
        "TRACKSIDE_DOCKER_URL": "off",
        "TRACKSIDE_CALL_REPORT_INTERVAL": "0.5",
        "TRACKSIDE_GATEWAY_CACHE_TTL": "0.5",
    }
    with fresh_database(root) as database_url:
        running = start_platform(root / "data", database_url, extra_env=env, timeout=180)
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    # Pages wait on a live platform sharing two cores with other test runs: give assertions time.
    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def new_page(browser: Any, platform: RunningPlatform, width: int = 1280, height: int = 900) -> Any:
    context = browser.new_context(base_url=platform.url, viewport={"width": width, "height": height})
    context.set_default_timeout(30_000)
    page = context.new_page()
    # Shown with a failing test's output: what the page's scripts said.
    page.on("pageerror", lambda error: print(f"page error on {page.url}: {error}"))
    page.on("console", lambda message: print(f"console {message.type} on {page.url}: {message.text}"))
    return page


def log_in(page: Any, username: str, password: str) -> None:
    page.goto("/dashboard/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/dashboard/jobs")


def admin_page(browser: Any, platform: RunningPlatform) -> Any:
    page = new_page(browser, platform)
    log_in(page, "admin", platform.admin_password)
    return page
