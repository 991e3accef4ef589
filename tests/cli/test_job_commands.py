"""list, delete, redeploy, logs (and follow), build-logs against the API's documented shapes."""

from __future__ import annotations

from tests.cli.support import Cli, ScriptedApi

from trackside.cli.client import iter_sse_data

API = "/lifecycle/api/v1"


def test_list_prints_tab_separated_rows_when_not_a_tty(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer(
        "GET",
        f"{API}/job",
        [
            {"name": "zeta", "version": "1.0.0", "status": "running", "infrastructure_target": "local",
             "pub_url": "http://gw/pub/job/zeta/1.0.0", "update_time": 5},
            {"name": "adder", "version": "0.0.1", "status": "error", "infrastructure_target": "docker",
             "pub_url": None, "update_time": 7},
        ],
    )  # fmt: skip

    result = cli("list", "--remote", scripted_api.url)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "NAME\tVERSION\tSTATUS\tTARGET\tURL",
        "adder\t0.0.1\tERROR\tdocker\t",
        "zeta\t1.0.0\tRUNNING\tlocal\thttp://gw/pub/job/zeta/1.0.0",
    ]


def test_delete_calls_the_exact_version(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("DELETE", f"{API}/job/adder/0.0.1", None)

    result = cli("delete", "adder", "--version", "0.0.1", "--remote", scripted_api.url)

    assert result.exit_code == 0, result.output
    assert len(scripted_api.received("DELETE", f"{API}/job/adder/0.0.1")) == 1


def test_delete_requires_a_version(cli: Cli) -> None:
    assert cli("delete", "adder").exit_code == 2


def test_redeploy_posts_and_prints_the_url(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("POST", f"{API}/job/adder/0.0.1/redeploy", {})
    scripted_api.answer("GET", f"{API}/job/adder/0.0.1", {"name": "adder", "pub_url": "http://gw/pub/job/adder/0.0.1"})

    result = cli("redeploy", "adder", "--version", "0.0.1", "--remote", scripted_api.url)

    assert result.exit_code == 0, result.output
    assert result.stdout == "http://gw/pub/job/adder/0.0.1\n"


def test_logs_passes_version_alias_and_tail(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("GET", f"{API}/job/adder/latest/logs", {"logs": "line 1\nline 2\n"})

    result = cli("logs", "adder", "--tail", "2", "--remote", scripted_api.url)

    assert result.exit_code == 0, result.output
    assert result.stdout == "line 1\nline 2\n"
    assert scripted_api.received("GET", f"{API}/job/adder/latest/logs")[0].query == "tail=2"


def test_build_logs_default_to_the_whole_log(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("GET", f"{API}/job/adder/1.x/build-logs", {"logs": "step 1\nstep 2"})

    result = cli("build-logs", "adder", "--version", "1.x", "--remote", scripted_api.url)

    assert result.exit_code == 0, result.output
    assert result.stdout == "step 1\nstep 2\n"
    assert scripted_api.received("GET", f"{API}/job/adder/1.x/build-logs")[0].query == "tail=0"


def test_follow_prints_server_sent_event_lines(cli: Cli, scripted_api: ScriptedApi) -> None:
    events = ": keep-alive\n\ndata: first line\n\nevent: log\ndata: second line\n\ndata:third\n\n"
    scripted_api.answer("GET", f"{API}/job/adder/latest/logs/stream", events, content_type="text/event-stream")

    result = cli("logs", "adder", "-f", "--tail", "5", "--remote", scripted_api.url)

    assert result.exit_code == 0, result.output
    assert result.stdout == "first line\nsecond line\nthird\n"
    assert scripted_api.received("GET", f"{API}/job/adder/latest/logs/stream")[0].query == "tail=5"


def test_follow_prints_plain_chunked_lines(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("GET", f"{API}/job/adder/latest/logs/stream", "a\nb\n", content_type="text/plain")

    result = cli("logs", "adder", "--follow", "--remote", scripted_api.url)

    assert result.stdout == "a\nb\n"


def test_follow_of_an_unknown_job_shows_the_api_error(cli: Cli, scripted_api: ScriptedApi) -> None:
    scripted_api.answer("GET", f"{API}/job/nope/latest/logs/stream", {"error": "job nope not found"}, status=404)

    result = cli("logs", "nope", "-f", "--remote", scripted_api.url)

    assert result.exit_code == 1
    assert result.stderr == "error: job nope not found\n"


def test_sse_parser_keeps_data_lines_only() -> None:
    lines = iter(["id: 1", "data: a", "data:  indented", "", "retry: 10", "dataset: no", ": comment", "data"])

    assert list(iter_sse_data(lines)) == ["a", " indented", ""]
