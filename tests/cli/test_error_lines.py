"""Expected failures are one `error: ...` line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.cli.support import Cli, ScriptedApi
from tests.support.ports import free_port


def assert_one_error_line(stderr: str, *fragments: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr


@pytest.mark.parametrize(
    "args",
    [
        ["list"],
        ["delete", "adder", "--version", "0.0.1"],
        ["redeploy", "adder", "--version", "0.0.1"],
        ["logs", "adder"],
        ["logs", "adder", "--follow"],
        ["build-logs", "adder"],
        ["call", "adder", "{}"],
    ],
)
def test_unreachable_remote_is_one_line_naming_the_url(cli: Cli, args: list[str]) -> None:
    remote = f"http://127.0.0.1:{free_port()}"

    result = cli(*args, "--remote", remote)

    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "cannot reach the Trackside API at", f"{remote}/lifecycle")


def test_unreachable_remote_from_a_real_process_has_no_traceback(tmp_path: Path) -> None:
    remote = f"http://127.0.0.1:{free_port()}"

    completed = subprocess.run(
        [sys.executable, "-m", "trackside.cli.main", "list", "--remote", remote],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "TRACKSIDE_CLIENT_CONFIG": str(tmp_path / "cfg"), "HOME": str(tmp_path)},
    )

    assert completed.returncode == 1
    assert completed.stdout == ""
    assert_one_error_line(completed.stderr, remote)


def test_api_error_shows_the_error_field(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer(
        "DELETE", "/lifecycle/api/v1/job/adder/9.9.9", {"error": "job adder 9.9.9 not found", "type": "NotFound"}, 404
    )

    result = cli("delete", "adder", "--version", "9.9.9", "--remote", scripted_api.url)

    assert result.exit_code == 1
    assert result.stderr == "error: job adder 9.9.9 not found\n"


def test_non_json_error_names_the_status_and_url(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("GET", "/lifecycle/api/v1/job", "<html>Bad Gateway</html>\n", 502, "text/html")

    result = cli("list", "--remote", scripted_api.url)

    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "HTTP 502", f"{scripted_api.url}/lifecycle/api/v1/job")


def test_a_non_trackside_server_is_reported_as_such(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("GET", "/lifecycle/api/v1/job", "<html>hello</html>", 200, "text/html")

    result = cli("list", "--remote", scripted_api.url)

    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "not JSON")


def test_invalid_remote_is_one_error_line(cli: Cli) -> None:
    result = cli("list", "--remote", "ftp://example.com")

    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "ftp")


def test_up_with_a_missing_config_file_is_one_error_line(cli: Cli, tmp_path: Path) -> None:
    result = cli("up", "--config", str(tmp_path / "missing.yaml"), "--data-dir", str(tmp_path / "data"))

    assert result.exit_code == 1
    assert_one_error_line(result.stderr, "missing.yaml")


def test_serve_rejects_an_unknown_component_as_usage_error(cli: Cli) -> None:
    result = cli("serve", "dashboard-xyz")

    assert result.exit_code == 2


def test_unknown_command_is_a_usage_error(cli: Cli) -> None:
    assert cli("deploi").exit_code == 2


def test_version_prints_the_package_version(cli: Cli) -> None:
    result = cli("version")

    assert result.exit_code == 0
    assert result.stdout.startswith("trackside ")


def test_verbose_flag_shows_debug_logs(cli: Cli) -> None:
    result = cli("-v", "list", "--remote", f"http://127.0.0.1:{free_port()}")

    assert "DEBUG" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: ")
