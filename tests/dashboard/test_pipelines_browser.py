"""The pipeline pages in a real browser, against a real `trackside up` with the local executor on:
start a run from the form and watch its DAG turn colour live, open a step's log and outputs, cancel a
long run, retry a failed one, page through the runs list, and see bad JSON or an invalid pipeline
refused next to the field.

Steps that must wait for the test wait on a flag file the test creates, so nothing depends on timing.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.conftest import fresh_database
from tests.dashboard.conftest import SCREENSHOTS, admin_page
from tests.pipelines.conftest import LOCAL_ENV
from tests.support.platform import RunningPlatform, start_platform

pytestmark = [pytest.mark.slow, pytest.mark.browser]

GREEN, BLUE, RED, GREY = "#67a567", "#6296c6", "#c67462", "#d2cdd5"
RUN_URL = re.compile(r"/dashboard/pipelines/runs/([0-9a-f-]+)$")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[RunningPlatform]:
    """The platform with the local pipeline executor turned on, as the pipeline tests run it."""
    root = tmp_path_factory.mktemp("pipeline-pages")
    env = {**LOCAL_ENV, "TRACKSIDE_DOCKER_URL": "off"}
    with fresh_database(root) as database_url:
        running = start_platform(root / "data", database_url, extra_env=env, timeout=180)
        try:
            yield running
        finally:
            running.stop()


def wait_for(flag: Path) -> str:
    """A shell loop that ends once the test creates `flag`."""
    return f"while [ ! -f {shlex.quote(str(flag))} ]; do sleep 0.05; done"


def start_from_form(page: Any, pipeline: dict[str, Any]) -> str:
    page.goto("/dashboard/pipelines")
    page.get_by_role("link", name="Start a run").click()
    page.fill("#pipeline", json.dumps(pipeline))
    page.get_by_role("button", name="Start the run").click()
    expect(page).to_have_url(RUN_URL)
    match = RUN_URL.search(page.url)
    assert match is not None
    return match.group(1)


def node(page: Any, job: str) -> Any:
    return page.locator(f'#run-dag a.dag-node[data-job="{job}"]')


def test_a_run_started_from_the_form_colours_its_dag_live_and_a_step_shows_its_log_and_outputs(
    platform: RunningPlatform, browser: Any, tmp_path: Path
) -> None:
    flag = tmp_path / "go"
    pipeline = {
        "kind": "Pipeline",
        "jobs": {
            "first": {"image": "busybox", "run": "echo hello from first; echo '::output greeting=hi'"},
            "second": {"image": "busybox", "run": wait_for(flag), "dependsOn": [{"job": "first"}]},
            "on-failure": {
                "image": "busybox",
                "run": "exit 0",
                "dependsOn": [{"job": "first", "conditions": {"failure": True}}],
            },
        },
    }
    page = admin_page(browser, platform)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Pipelines")).to_be_visible()
    start_from_form(page, pipeline)

    # While `second` waits on the flag: it is drawn running (blue), `first` successful (green), the
    # failure branch skipped (grey); then, without reloading, the DAG turns green as the run ends.
    expect(node(page, "second")).to_have_attribute("data-status", "RUNNING")
    expect(node(page, "second").locator("rect")).to_have_attribute("fill", BLUE)
    expect(node(page, "first")).to_have_attribute("data-status", "SUCCESSFUL")
    expect(node(page, "first").locator("rect")).to_have_attribute("fill", GREEN)
    expect(node(page, "on-failure").locator("rect")).to_have_attribute("fill", GREY)
    expect(page.locator("#run-dag path.dag-edge")).to_have_count(2)
    expect(page.get_by_role("button", name="Cancel run")).to_be_visible()
    flag.touch()
    expect(page.locator("#run-status")).to_have_attribute("data-status", "SUCCESSFUL")
    expect(node(page, "second").locator("rect")).to_have_attribute("fill", GREEN)
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    expect(page.locator('#steps-table tr[data-job="on-failure"]')).to_contain_text("on failure")
    page.screenshot(path=str(SCREENSHOTS / "dashboard-pipeline-run.png"), full_page=True)  # docs/pipelines.md

    # A step's page: its log, its outputs, its attempts.
    node(page, "first").click()
    expect(page.get_by_role("heading", name="Step first")).to_be_visible()
    expect(page.locator("#runtime-logs")).to_contain_text("hello from first")
    expect(page.locator("#step-outputs")).to_contain_text('"greeting": "hi"')
    expect(page.locator("#attempts-table tbody tr")).to_have_count(1)
    expect(page.locator("#step-status")).to_have_attribute("data-status", "SUCCESSFUL")


def test_a_running_steps_log_is_followed_live_until_the_step_ends(
    platform: RunningPlatform, browser: Any, tmp_path: Path
) -> None:
    flag = tmp_path / "go"
    run = f"echo before the flag; {wait_for(flag)}; echo after the flag"
    page = admin_page(browser, platform)
    start_from_form(page, {"kind": "Pipeline", "jobs": {"waiter": {"image": "busybox", "run": run}}})
    expect(node(page, "waiter")).to_have_attribute("data-status", "RUNNING")
    node(page, "waiter").click()
    follow = page.locator("#follow-logs")
    follow.click()
    expect(page.locator("#runtime-logs")).to_contain_text("before the flag")
    expect(follow).to_have_attribute("aria-pressed", "true")
    flag.touch()
    expect(page.locator("#runtime-logs")).to_contain_text("after the flag")
    # The stream ends with the step: the button is released, and the log is not repeated.
    expect(follow).to_have_attribute("aria-pressed", "false")
    assert page.locator("#runtime-logs").text_content().count("before the flag") == 1


def test_the_runs_list_shows_each_runs_step_bar_and_the_active_count_and_a_long_run_is_canceled(
    platform: RunningPlatform, browser: Any, tmp_path: Path
) -> None:
    page = admin_page(browser, platform)
    pipeline = {
        "kind": "Pipeline",
        "jobs": {
            "long": {"image": "busybox", "run": wait_for(tmp_path / "never")},
            "after": {"image": "busybox", "run": "exit 0", "dependsOn": [{"job": "long"}]},
        },
    }
    uid = start_from_form(page, pipeline)
    expect(node(page, "long")).to_have_attribute("data-status", "RUNNING")

    # The list: the run is active, its bar has one cell per step in chainr's colours.
    page.goto("/dashboard/pipelines")
    expect(page.locator("#active-runs")).to_have_attribute("data-active", "1")
    row = page.locator(f'#runs-table tr[data-run="{uid}"]')
    expect(row.locator(".step-cell")).to_have_count(2)
    expect(row.locator('.step-cell[data-job="long"]')).to_have_attribute("data-status", "RUNNING")
    expect(row.locator('.step-cell[data-job="after"]')).to_have_attribute("data-status", "PENDING")

    # Cancel from the run's page: the running step is killed, the waiting one never runs.
    row.get_by_role("link").first.click()
    page.get_by_role("button", name="Cancel run").click()
    expect(page.locator("#run-status")).to_have_attribute("data-status", "CANCELED")
    expect(node(page, "long")).to_have_attribute("data-status", "CANCELED")
    expect(node(page, "after")).to_have_attribute("data-status", re.compile("SKIPPED|CANCELED"))
    expect(page.get_by_role("button", name="Retry run")).to_be_visible()
    page.goto("/dashboard/pipelines")
    expect(page.locator("#active-runs")).to_have_attribute("data-active", "0")
    expect(page.locator(f'#runs-table tr[data-run="{uid}"]')).to_have_attribute("data-status", "CANCELED")


def test_a_failed_run_is_retried_keeping_its_successful_steps(
    platform: RunningPlatform, browser: Any, tmp_path: Path
) -> None:
    flag = tmp_path / "fixed"
    pipeline = {
        "kind": "Pipeline",
        "jobs": {
            "build": {"image": "busybox", "run": "echo built"},
            "check": {
                "image": "busybox",
                "run": f"test -f {shlex.quote(str(flag))}",
                "dependsOn": [{"job": "build"}],
            },
        },
    }
    page = admin_page(browser, platform)
    first = start_from_form(page, pipeline)
    expect(page.locator("#run-status")).to_have_attribute("data-status", "FAILED")
    expect(node(page, "check").locator("rect")).to_have_attribute("fill", RED)

    flag.touch()
    page.get_by_role("button", name="Retry run").click()
    expect(page).to_have_url(RUN_URL)
    second = RUN_URL.search(page.url)
    assert second is not None and second.group(1) != first
    expect(page.locator("#run-status")).to_have_attribute("data-status", "SUCCESSFUL")
    expect(page.locator('#steps-table tr[data-job="build"]')).to_contain_text(f"kept from run {first}")
    expect(page.get_by_role("link", name=first, exact=True)).to_be_visible()  # "Retry of"


def test_bad_json_and_an_invalid_pipeline_are_refused_next_to_the_field(
    platform: RunningPlatform, browser: Any
) -> None:
    page = admin_page(browser, platform)
    page.goto("/dashboard/pipelines/new")
    page.fill("#pipeline", '{"kind": "Pipeline", "jobs": {')
    page.get_by_role("button", name="Start the run").click()
    expect(page.locator("#pipeline-error")).to_contain_text("not valid JSON")
    expect(page.locator("#pipeline")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#pipeline")).to_have_value('{"kind": "Pipeline", "jobs": {')

    unknown = {"kind": "Pipeline", "jobs": {"a": {"image": "busybox", "run": "true", "dependsOn": [{"job": "ghost"}]}}}
    page.fill("#pipeline", json.dumps(unknown))
    page.get_by_role("button", name="Start the run").click()
    expect(page.locator("#pipeline-error")).to_contain_text("ghost")
    expect(page).to_have_url(re.compile(r"/dashboard/pipelines/new$"))


def test_the_runs_list_pages_through_many_runs(platform: RunningPlatform, browser: Any) -> None:
    for _ in range(27):
        answer = platform.http.post(f"{platform.url}/api/runs", json={"kind": "Pipeline", "jobs": {}})
        assert answer.status_code == 202, answer.text
    page = admin_page(browser, platform)
    page.goto("/dashboard/pipelines")
    expect(page.locator("#runs-table tbody tr")).to_have_count(25)
    page.get_by_role("navigation", name="Run pages").get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(r"page=2"))
    rows = page.locator("#runs-table tbody tr")
    expect(rows.first).to_be_visible()
    assert 1 <= rows.count() <= 25
    page.get_by_role("navigation", name="Run pages").get_by_role("link", name="← Previous").click()
    expect(page.locator("#runs-table tbody tr")).to_have_count(25)
